"""pytest side of the Chaos Toolkit front: collects experiment files as drills (sub-plugin of
:mod:`chaosrec.plugin`)."""

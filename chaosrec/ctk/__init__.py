"""chaosrec as a Chaos Toolkit extension: actions, probes and controls over :mod:`chaosrec.faults`.

Needs the ``ctk`` extra (``pip install 'chaosrec[ctk]'``); importing :mod:`chaosrec` never imports it.
"""

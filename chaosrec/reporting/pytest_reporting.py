"""pytest side of reporting: Allure enrichment and the drill summary (sub-plugin of
:mod:`chaosrec.plugin`)."""

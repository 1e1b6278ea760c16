"""chaosrec as a Chaos Toolkit extension: actions, probes and controls over chaosrec's faults.

Needs the ``ctk`` extra (``pip install 'chaosrec[ctk]'``); importing chaosrec never imports it.
"""

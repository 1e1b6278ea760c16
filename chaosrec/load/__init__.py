"""Open-loop load: requests leave on a schedule, whatever the service does."""

from chaosrec.load.generator import LoadRun, default_params

__all__ = ["LoadRun", "default_params"]

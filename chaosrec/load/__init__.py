"""Open-loop load: requests leave on a schedule, whatever the service does.

* runs: :class:`LoadRun` (this process), :class:`DistributedRun` (``workers=N`` local
  processes or :class:`LocustWorkers`), both built by :func:`open_run`;
* what is sent: HTTP requests of any shape (:class:`HttpRequest`, a builder
  ``i -> request``), recorded traffic (:class:`Replay`, :class:`Recording`), KServe v2
  gRPC (:class:`KServeFront`, :class:`GrpcTarget`);
* when: :func:`constant`, :func:`ramp`, :func:`steps`, :func:`spike`, :func:`diurnal`,
  sums of them, or given :class:`Arrivals`.
"""

from chaosrec.load.distributed import DistributedRun, LocalWorkers
from chaosrec.load.factory import open_run
from chaosrec.load.generator import LoadRun, default_params
from chaosrec.load.grpc import GrpcTarget, KServeFront
from chaosrec.load.locust import LocustWorkers
from chaosrec.load.requests import HttpRequest
from chaosrec.load.run import RunBase
from chaosrec.load.schedule import Arrivals, Schedule, constant, diurnal, ramp, spike, steps
from chaosrec.load.traffic import Recording, Replay, read_traffic

__all__ = [
    "Arrivals",
    "DistributedRun",
    "GrpcTarget",
    "HttpRequest",
    "KServeFront",
    "LoadRun",
    "LocalWorkers",
    "LocustWorkers",
    "Recording",
    "Replay",
    "RunBase",
    "Schedule",
    "constant",
    "default_params",
    "diurnal",
    "open_run",
    "ramp",
    "read_traffic",
    "spike",
    "steps",
]

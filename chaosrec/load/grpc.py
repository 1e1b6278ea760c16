"""KServe v2 over gRPC: open-loop ``ModelInfer`` calls straight to Triton (or any KServe
v2 server), through ``tritonclient.grpc.aio``, recorded in the same request log.

::

    front = KServeFront(["127.0.0.1:8001"], model="recsys",
                        inputs=lambda i: {"USER_ID": np.array([[i % 5000]], dtype=np.int64)})
    with LoadRun(front, rate_rps=200, duration_s=10) as run:
        ...

Request ``i`` goes to ``targets[i % len(targets)]``; every row records that target's
``region`` and ``replica`` (when given), answered or not, since a KServe answer carries
no routing headers: ``run.log.region == "region-a"`` selects what one region was asked.

**Status mapping.** The log's ``status`` column is HTTP-like, so every SLO and report
reads a gRPC run unchanged. A gRPC code becomes the HTTP status of the standard
mapping (``google/rpc/code.proto``), except the two that only our own client raises,
which are transport errors like an HTTP client timeout:

============================  ======  ==================================================
gRPC code                     status  note
============================  ======  ==================================================
OK                            200     answered
CANCELLED                     0       the client cancelled (the run was stopped)
DEADLINE_EXCEEDED             0       ``timeout_s`` passed (an HTTP timeout is 0 too)
INVALID_ARGUMENT              400
FAILED_PRECONDITION           400
OUT_OF_RANGE                  400
UNAUTHENTICATED               401
PERMISSION_DENIED             403
NOT_FOUND                     404     e.g. the model is not loaded
ALREADY_EXISTS, ABORTED       409
RESOURCE_EXHAUSTED            429
UNKNOWN, INTERNAL, DATA_LOSS  500     e.g. the model failed on its device
UNIMPLEMENTED                 501
UNAVAILABLE                   503     also a refused or reset connection: gRPC reports
                                      those as UNAVAILABLE, so for gRPC they are 503,
                                      where HTTP records 0
============================  ======  ==================================================

The ``error`` column keeps ``grpc <CODE>: <details>`` for every failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from chaosrec.core.guard import TargetGuard
from chaosrec.errors import ConfigError
from chaosrec.load.fronts import Outcome
from chaosrec.slo.log import STATUS_TRANSPORT_ERROR

__all__ = ["GRPC_STATUS", "GrpcTarget", "KServeFront", "recsys_inputs", "status_of"]

#: gRPC status code name -> the request log's status (see the module docs)
GRPC_STATUS: dict[str, int] = {
    "OK": 200,
    "CANCELLED": STATUS_TRANSPORT_ERROR,
    "DEADLINE_EXCEEDED": STATUS_TRANSPORT_ERROR,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
}

InputsFn = Callable[[int], Mapping[str, npt.NDArray[Any]]]


def status_of(code: str) -> int:
    """The log status of gRPC code ``code`` (``"UNAVAILABLE"`` or ``"StatusCode.UNAVAILABLE"``);
    an unknown code is a 500."""
    return GRPC_STATUS.get(code.rsplit(".", 1)[-1], 500)


@dataclass(frozen=True)
class GrpcTarget:
    """One KServe v2 gRPC endpoint, ``host:port``, with the labels its rows get."""

    address: str
    region: str | None = None
    replica: str | None = None


def recsys_inputs(n_users: int = 5000, seed: int = 11) -> InputsFn:
    """Inputs of the reference model ``recsys``: ``USER_ID`` int64 ``[1, 1]``,
    pseudo-random users (the same users as the gateway's default load)."""
    import random

    rng = random.Random(seed)
    users = [np.array([[rng.randrange(n_users)]], dtype=np.int64) for _ in range(4096)]
    return lambda i: {"USER_ID": users[i % len(users)]}


class KServeFront:
    """``ModelInfer`` calls through ``tritonclient.grpc.aio``; see the module docs.

    :param targets: ``"host:port"`` strings or :class:`GrpcTarget` (with region/replica
        labels); request ``i`` goes to ``targets[i % len(targets)]``.
    :param model: the model's name; ``model_version`` its version ("" = the server's).
    :param inputs: ``i -> {input name: numpy array}`` (datatypes from the arrays).
    :param outputs: output names to ask for (default: every output).
    :param guard: checks each target's host (loopback unless allowed).
    """

    def __init__(
        self,
        targets: str | GrpcTarget | Sequence[str | GrpcTarget],
        *,
        model: str,
        inputs: InputsFn,
        outputs: Sequence[str] | None = None,
        model_version: str = "",
        guard: TargetGuard | None = None,
    ) -> None:
        listed = [targets] if isinstance(targets, str | GrpcTarget) else list(targets)
        if not listed:
            raise ConfigError("targets= is empty; give at least one host:port")
        self.targets = [t if isinstance(t, GrpcTarget) else GrpcTarget(str(t)) for t in listed]
        for target in self.targets:
            host, sep, port = target.address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(
                    f"target {target.address!r} must be host:port (e.g. 127.0.0.1:8001), "
                    "without a scheme"
                )
            (guard or TargetGuard()).check_url(f"grpc://{target.address}", "the gRPC target")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model={model!r} must be the model's name")
        if not callable(inputs):
            raise ConfigError(f"inputs={inputs!r} must be a callable i -> {{name: array}}")
        self.model = model
        self.model_version = model_version
        self.inputs = inputs
        self.output_names = list(outputs) if outputs is not None else None
        self.url = "grpc://" + ",".join(t.address for t in self.targets) + f"/{model}"
        for i in range(3):  # a bad builder fails now, before anything is sent
            made = inputs(i)
            if not isinstance(made, Mapping) or not made:
                raise ConfigError(f"inputs({i}) returned {made!r}; return {{name: numpy array}}")
            for name, value in made.items():
                if not isinstance(value, np.ndarray):
                    raise ConfigError(
                        f"inputs({i})[{name!r}] is a {type(value).__name__}; give a numpy array"
                    )
        self._clients: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._timeout_s = 5.0

    async def open(self, *, max_inflight: int, timeout_s: float) -> None:
        import tritonclient.grpc.aio as aio

        self._timeout_s = timeout_s
        self._clients = [aio.InferenceServerClient(t.address) for t in self.targets]

    def send(self, i: int, done: Callable[[Outcome], None]) -> None:
        task = asyncio.get_running_loop().create_task(self._call(i, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, i: int, done: Callable[[Outcome], None]) -> None:
        from tritonclient.grpc import InferInput, InferRequestedOutput
        from tritonclient.utils import InferenceServerException, np_to_triton_dtype

        k = i % len(self.targets)
        target = self.targets[k]
        try:
            tensors = []
            for name, array in self.inputs(i).items():
                tensor = InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
                tensor.set_data_from_numpy(array)
                tensors.append(tensor)
            outputs = (
                [InferRequestedOutput(n) for n in self.output_names]
                if self.output_names is not None
                else None
            )
            await self._clients[k].infer(
                self.model,
                tensors,
                model_version=self.model_version,
                outputs=outputs,
                client_timeout=self._timeout_s,
            )
        except InferenceServerException as err:
            code = str(err.status() or "UNKNOWN").rsplit(".", 1)[-1]
            details = " ".join(str(err.message() or "").split())[:200]
            done((status_of(code), target.region, target.replica, False, f"grpc {code}: {details}"))
        except asyncio.CancelledError:
            done((STATUS_TRANSPORT_ERROR, target.region, target.replica, False, "grpc CANCELLED"))
            raise
        except Exception as err:  # noqa: BLE001 - any other failure is a transport error
            done((STATUS_TRANSPORT_ERROR, target.region, target.replica, False, type(err).__name__))
        else:
            done((200, target.region, target.replica, False, None))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self._clients:
            await client.close()
        self._clients = []

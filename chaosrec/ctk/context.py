"""Which recommender a Chaos Toolkit activity acts on, and the per-process fault registry.

Chaos Toolkit calls each activity as a separate function in one process, so the
faults an action injects live in a per-process :class:`~chaosrec.faults.injector.Chaos`
that ``rollback_all`` (in every experiment's ``rollbacks``), the chaosrec control
and an ``atexit`` hook revert.

The target is resolved once per process, first match wins:

1. a target bound in process by :func:`bind` (pytest binds its ``recsys`` fixture);
2. the experiment's ``configuration``: ``chaosrec_target`` (a remote target YAML
   file), else ``chaosrec_gateway_url`` (+ ``chaosrec_toxiproxy_url``), else
   ``chaosrec_stack`` (the name of a ``chaosrec stack up`` stack);
3. the environment: ``CHAOSREC_TARGET``, ``CHAOSREC_GATEWAY_URL`` (+
   ``CHAOSREC_TOXIPROXY_URL``), ``CHAOSREC_STACK``;
4. the stack ``chaosrec stack up`` started (name ``default``).

A non-loopback gateway, Toxiproxy or target-file URL is refused before anything is
injected unless its host is allowed: ``chaosrec_allow_hosts`` in the configuration or
``CHAOSREC_ALLOW_HOSTS`` in the environment (see :mod:`chaosrec.core.guard`).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrec.core.guard import TargetGuard
from chaosrec.errors import ConfigError, StackError, UnsupportedFaultError

if TYPE_CHECKING:
    from chaosrec.adapters.triton import TritonModelControl

__all__ = [
    "CONFIG_KEYS",
    "ENV_KEYS",
    "Session",
    "StackStateControl",
    "bind",
    "current",
    "reset",
    "rollback_everything",
    "session",
    "traffic_params",
]

CONFIG_KEYS = (
    "chaosrec_target",
    "chaosrec_gateway_url",
    "chaosrec_toxiproxy_url",
    "chaosrec_stack",
)
ENV_KEYS = {key: key.upper() for key in CONFIG_KEYS}


class StackStateControl:
    """Control plane of a stack run by ``chaosrec stack up`` in another process, read from
    its ``state.json``: emulated GPU faults (the replica's fault file), crashes (SIGKILL;
    that stack's supervisor restarts the replica) and model control (Triton's HTTP API).

    Holding a killed replica down needs the supervisor's cooperation, which only the
    process running the stack has: ``gpu_loss(mode="kill")`` and
    ``region_outage(mode="kill")`` are refused before anything is killed."""

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise StackError(
                f"cannot read the stack state {self.state_path} ({err}); "
                "is `chaosrec stack up` still running?"
            ) from err
        return data

    def _replica(self, replica_id: str) -> dict[str, Any]:
        for replica in self.state().get("replicas", []):
            if replica.get("replica") == replica_id:
                return dict(replica)
        raise StackError(f"replica {replica_id!r} is not in {self.state_path}")

    def _work_dir(self, replica_id: str) -> Path:
        return Path(self.state()["run_dir"]) / "replicas" / replica_id

    def set_gpu_fault(self, replica_id: str, fault: dict[str, Any]) -> None:
        from chaosrec.stack.triton import write_fault

        write_fault(self._work_dir(replica_id) / "fault.json", fault)

    def kill_replica(self, replica_id: str, *, hold: bool = False) -> int | None:
        if hold:
            raise UnsupportedFaultError(
                f"{replica_id}: holding a killed replica down needs the process that runs "
                "the stack; with `chaos run` use mode='refuse' or 'blackhole' (or crash), "
                "or run the experiment from pytest (pytest -m drill)"
            )
        from chaosrec.adapters.process.identity import ProcessIdentity

        recorded = ProcessIdentity.from_dict(self._replica(replica_id).get("identity") or {})
        # signal only the process the state file names if it is still that Triton: same
        # pid, same start time, still tritonserver; a stale file must not kill a stranger
        if recorded is None or not recorded.is_running_command("tritonserver"):
            raise StackError(
                f"{replica_id}: the Triton process recorded in {self.state_path} is not "
                "running; is `chaosrec stack up` still running? (nothing was signalled)"
            )
        try:
            os.killpg(recorded.pid, signal.SIGKILL)  # Triton and its Python-backend stub
        except ProcessLookupError:
            os.kill(recorded.pid, signal.SIGKILL)
        return recorded.pid

    def release_replica(self, replica_id: str) -> None:
        """Nothing to release: the stack's supervisor restarts a crashed replica itself."""

    def _control(self, replica_id: str) -> TritonModelControl:
        from chaosrec.adapters.triton import TritonModelControl

        port = self._replica(replica_id)["http_port"]
        return TritonModelControl(
            f"http://127.0.0.1:{port}",
            "recsys",
            model_dir=self._work_dir(replica_id) / "models" / "recsys",
            label=replica_id,
        )

    def unload_model(self, replica_id: str) -> None:
        self._control(replica_id).unload()

    def load_model(self, replica_id: str, version: int = 1) -> None:
        self._control(replica_id).load(version)


class Session:
    """The target and the fault injector of this process's Chaos Toolkit activities.

    ``owned``: the session created the target's clients (closed by :func:`reset`)."""

    def __init__(
        self, target: Any, source: str, *, owned: bool = False, guard: TargetGuard | None = None
    ) -> None:
        from chaosrec.faults.injector import Chaos

        self.target = target
        self.source = source  # how the target was found, for messages
        self.guard = guard or TargetGuard.from_env()
        if target.gateway_url:  # a Kubernetes-only target has none (cluster probes only)
            self.guard.check_url(target.gateway_url, f"the gateway ({source})")
        self.chaos = Chaos(
            target.toxiproxy,
            topology=target.topology,
            control=target.control,
            traffic=target.traffic,
            connection_reuse=target.set_connection_reuse if target.control is not None else None,
            guard=self.guard,
        )
        from chaosrec.drill import Drill

        self.drill = Drill(f"chaos toolkit on {source}")
        self.chaos.listeners.append(self.drill.on_fault)
        self.kubernetes: Any = None  # a KubernetesFaults when the target runs on Kubernetes
        self.loads: list[Any] = []
        self.guardrails: list[Any] = []
        self.owned = owned

    def check_reachable(self) -> None:
        """The gateway answers; for a Kubernetes-only target, the API server (its URL
        checked by the guard first)."""
        if self.target.gateway_url or self.kubernetes is None:
            self.target.check_reachable()
            return
        self.kubernetes.api().core.get_api_resources()

    def close(self) -> None:
        """Close the clients this session opened (not those of a bound target)."""
        if self.owned and self.target.toxiproxy is not None:
            self.target.toxiproxy.close()


_lock = threading.RLock()
_bound: Any = None
_session: Session | None = None
_atexit_registered = False


def traffic_params(target: Any) -> Any:
    """Query parameters for the probes' and ``start_load``'s requests: pseudo-random users,
    each request from the next region in turn (``region=``), as when users of every
    region are served. A sample then warms and measures every region; traffic from the
    home region only would leave the others cold until a failover."""
    from chaosrec.load.generator import default_params

    base = default_params(target.n_users or 1000)
    regions = list(target.topology.regions)

    def params(i: int) -> dict[str, str | int]:
        return {**base(i), "region": regions[i % len(regions)]}

    return params


def bind(target: Any) -> None:
    """Make every activity of this process act on ``target`` (a RecsysTarget); ``None``
    unbinds. Faults of a previous session are rolled back first."""
    global _bound
    with _lock:
        reset()
        _bound = target


def reset() -> None:
    """Roll back every fault and forget the session (the next activity resolves again)."""
    global _session
    with _lock:
        try:
            rollback_everything()
        finally:
            if _session is not None:
                _session.close()
            _session = None


def current() -> Session | None:
    return _session


def _setting(configuration: dict[str, Any] | None, key: str) -> tuple[str | None, str]:
    value = (configuration or {}).get(key)
    if value not in (None, ""):
        if not isinstance(value, str):
            raise ConfigError(f"configuration {key}={value!r} must be a string")
        return value, f"configuration key {key!r}"
    env = os.environ.get(ENV_KEYS[key])
    if env:
        return env, f"environment variable {ENV_KEYS[key]}"
    return None, ""


def session(configuration: dict[str, Any] | None = None) -> Session:
    """This process's session, resolving the target on first use (see module docs).
    Raises :class:`ConfigError` naming the missing or wrong key before anything is injected."""
    global _session, _atexit_registered
    with _lock:
        if _session is not None:
            return _session
        guard = _guard(configuration)
        target, source, kube = _resolve(configuration, guard)
        _session = Session(target, source, owned=target is not _bound, guard=guard)
        if kube is not None:
            from chaosrec.ctk.kubernetes import KubernetesFaults

            _session.kubernetes = KubernetesFaults(kube, _session.chaos)
        if not _atexit_registered:
            atexit.register(_rollback_at_exit)
            _atexit_registered = True
        return _session


def _guard(configuration: dict[str, Any] | None) -> TargetGuard:
    """Loopback, plus ``chaosrec_allow_hosts`` (configuration) or ``$CHAOSREC_ALLOW_HOSTS``."""
    value = (configuration or {}).get("chaosrec_allow_hosts")
    if value is not None and not isinstance(value, str | list):
        raise ConfigError(
            f"configuration chaosrec_allow_hosts={value!r} must be a string of host patterns "
            "or a list of them"
        )
    return TargetGuard.from_env(value)


def _resolve(configuration: dict[str, Any] | None, guard: TargetGuard) -> tuple[Any, str, Any]:
    from chaosrec.drill.target import RecsysTarget, load_remote_config

    if _bound is not None:
        return _bound, "the target bound in process", None
    path, where = _setting(configuration, "chaosrec_target")
    if path:
        from chaosrec.adapters.toxiproxy import ToxiproxyClient
        from chaosrec.ctk.kubernetes import parse_kubernetes

        if not Path(path).is_file():
            raise ConfigError(f"{where}: target file {path!r} does not exist")
        data = load_remote_config(Path(path))
        toxi_url = data.get("toxiproxy_url")
        if data.get("gateway_url"):
            guard.check_url(str(data["gateway_url"]), f"{where} ({path}): gateway_url")
        if toxi_url:
            guard.check_url(str(toxi_url), f"{where} ({path}): toxiproxy_url")
        target = RecsysTarget.from_config(
            Path(path), ToxiproxyClient(toxi_url) if toxi_url else None
        )
        kube = data.get("kubernetes")
        spec = parse_kubernetes(kube, f"{path}:kubernetes") if kube is not None else None
        return target, f"{where} ({path})", spec
    url, where = _setting(configuration, "chaosrec_gateway_url")
    if url:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}={url!r} must be an http:// URL")
        guard.check_url(url, where)
        toxi_url, toxi_where = _setting(configuration, "chaosrec_toxiproxy_url")
        toxiproxy = None
        if toxi_url:
            guard.check_url(toxi_url, toxi_where)
            from chaosrec.adapters.toxiproxy import ToxiproxyClient

            toxiproxy = ToxiproxyClient(toxi_url)
        from chaosrec.core.topology import load_topology

        return (
            RecsysTarget(gateway_url=url, topology=load_topology("default"), toxiproxy=toxiproxy),
            where,
            None,
        )
    name, where = _setting(configuration, "chaosrec_stack")
    target, source = _from_stack(
        name or "default", where or "the default stack of `chaosrec stack up`"
    )
    return target, source, None


def _from_stack(name: str, where: str) -> tuple[Any, str]:
    from chaosrec.adapters.toxiproxy import ToxiproxyClient
    from chaosrec.core.topology import parse_topology
    from chaosrec.drill.target import Golden, RecsysTarget
    from chaosrec.stack.stack import stack_state_dir

    state_path = stack_state_dir(name, where) / "state.json"  # ConfigError for "../x"
    control = StackStateControl(state_path)
    try:
        state = control.state()
    except StackError as err:
        raise ConfigError(
            f"no running chaosrec stack {name!r} ({where}): start one with `chaosrec stack up"
            + (f" --name {name}" if name != "default" else "")
            + "`, or set chaosrec_target / chaosrec_gateway_url in the experiment's "
            "configuration (or CHAOSREC_TARGET / CHAOSREC_GATEWAY_URL)"
        ) from err
    if state.get("status") != "ready":
        raise ConfigError(
            f"chaosrec stack {name!r} is {state.get('status')!r}, not ready ({state_path}); "
            "restart it with `chaosrec stack down && chaosrec stack up`"
        )
    golden = None
    try:
        from chaosrec.model import ensure_model

        artifact = ensure_model("good")
        if artifact.golden is not None:
            golden = Golden(
                tuple(int(u) for u in artifact.golden.user_ids),
                tuple(tuple(int(i) for i in r) for r in artifact.golden.relevant),
            )
        n_users = int(artifact.meta.get("n_users", 0)) or None
    except Exception:  # noqa: BLE001 - recall probes then say there is no golden set
        n_users = None
    target = RecsysTarget(
        gateway_url=state["gateway"]["url"],
        topology=parse_topology(state["topology"], str(state_path)),
        toxiproxy=ToxiproxyClient(state["toxiproxy"]["api_url"]),
        control=control,
        golden=golden,
        n_users=n_users,
        admin_token=_stack_admin_token(state),
    )
    return target, f"{where} ({state_path})"


def _stack_admin_token(state: dict[str, Any]) -> str | None:
    """The gateway's /admin token of a ``chaosrec stack up`` stack: in its config file
    (mode 0600, readable by the user who started the stack), never in state.json."""
    from chaosrec.stack.gateway.config import GatewayConfig

    try:
        return GatewayConfig.read(Path(state["run_dir"]) / "gateway.json").admin_token
    except (OSError, ValueError, KeyError, ConfigError):
        return None


def rollback_everything() -> None:
    """Stop guardrails and loads, then revert every fault of this process's session."""
    current_session = _session
    if current_session is None:
        return
    for guard in current_session.guardrails:
        guard.stop()
    for run in current_session.loads:
        run.stop()
    current_session.chaos.rollback_all()


def _rollback_at_exit() -> None:
    try:
        rollback_everything()
    except Exception as err:  # noqa: BLE001 - at exit, say it loudly rather than raise
        import sys

        from chaosrec.core.redact import redact_text

        print(f"chaosrec: rollback at exit failed: {redact_text(str(err))}", file=sys.stderr)

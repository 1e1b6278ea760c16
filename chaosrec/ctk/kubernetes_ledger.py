"""Who owns each Kubernetes fault, written on the cluster itself, so no fault outlives its
session: a cordon left by a killed session is undone by the next one.

Before a fault changes an object, chaosrec annotates that object with
:data:`ANNOTATION` (``chaosrec.io/fault``): the owning session (host, pid, process start
time: :class:`~chaosrec.faults.ownership.SessionId`), the fault's label, and how to undo
it (``{"unschedulable": false}`` for a cordoned node, ``{"replicas": N}`` for a Deployment
scaled to 0). The annotation is removed once the fault's rollback succeeded.

:func:`sweep` (run before a session's first Kubernetes fault, by
:meth:`~chaosrec.ctk.kubernetes.KubernetesFaults.sweep`) undoes the marks of sessions on
this host whose process is gone (SIGKILL, a crashed CI job) and removes them; marks of live
sessions, and of sessions on other hosts (whose liveness this host cannot see), are left
alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chaosrec.faults.ownership import SessionId

__all__ = ["ANNOTATION", "FaultMark", "Swept", "clear", "mark", "session_id", "sweep"]

ANNOTATION = "chaosrec.io/fault"

_session: SessionId | None = None


def session_id() -> SessionId:
    """This process's session (one per process, like the Toxiproxy ledger's)."""
    global _session
    if _session is None or not _session.process_alive() or not _session.runs_here():
        _session = SessionId.this_process()
    return _session


@dataclass(frozen=True)
class FaultMark:
    """An object a fault changes: ``kind`` ``"node"`` or ``"deployment"``, and its undo."""

    kind: str
    name: str
    namespace: str | None
    undo: dict[str, Any]

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class Swept:
    what: str
    owner: str

    def describe(self) -> str:
        return f"{self.what} (left by dead session {self.owner})"


def _patch(api: Any, item: FaultMark, annotations: dict[str, str | None], **spec: Any) -> None:
    body: dict[str, Any] = {"metadata": {"annotations": annotations}}
    if spec:
        body["spec"] = spec
    if item.kind == "node":
        api.core.patch_node(item.name, body)
    else:
        api.apps.patch_namespaced_deployment(item.name, item.namespace, body)


def mark(api: Any, item: FaultMark, label: str) -> None:
    """Record that this session is about to fault ``item``."""
    record = {"owner": str(session_id()), "fault": label, "undo": item.undo}
    _patch(api, item, {ANNOTATION: json.dumps(record)})


def clear(api: Any, item: FaultMark) -> None:
    """Remove the record (the fault was reverted)."""
    _patch(api, item, {ANNOTATION: None})


def _undo(api: Any, item: FaultMark) -> None:
    if item.kind == "node":
        _patch(api, item, {ANNOTATION: None}, unschedulable=bool(item.undo["unschedulable"]))
    else:
        _patch(api, item, {ANNOTATION: None}, replicas=int(item.undo["replicas"]))


def sweep(api: Any, namespaces: tuple[str, ...] = ()) -> list[Swept]:
    """Undo what dead sessions of this host left (see the module docs); what was swept."""
    candidates: list[tuple[FaultMark, dict[str, Any]]] = []
    for node in api.core.list_node().items:
        record = (node.metadata.annotations or {}).get(ANNOTATION)
        if record:
            candidates.append((FaultMark("node", node.metadata.name, None, {}), _load(record)))
    for namespace in namespaces:
        for d in api.apps.list_namespaced_deployment(namespace).items:
            record = (d.metadata.annotations or {}).get(ANNOTATION)
            if record:
                item = FaultMark("deployment", d.metadata.name, namespace, {})
                candidates.append((item, _load(record)))
    swept: list[Swept] = []
    for item, record in candidates:
        owner = SessionId.parse(str(record.get("owner", "")))
        if owner is None or not owner.runs_here() or owner.process_alive():
            continue
        undo = record.get("undo")
        if not isinstance(undo, dict) or not undo:
            continue
        _undo(api, FaultMark(item.kind, item.name, item.namespace, undo))
        what = f"{record.get('fault', '?')} on {item.describe()}"
        swept.append(Swept(what, str(owner)))
    return swept


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

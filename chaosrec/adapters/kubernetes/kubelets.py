"""SIMULATED kubelets: chaosrec's own stand-in for kwok, used only when no kwok binary can be
had (``chaosrec setup`` builds kwok with ``go install``; without the Go module proxy it
cannot).

It plays the kubelets of one *group* of nodes the way kwok's default ("fast") stages do,
over the plain Kubernetes API (client certificate, no other dependency):

* **nodes**: each node of the group gets Ready/MemoryPressure/DiskPressure/PIDPressure
  conditions, an address and a node Lease in ``kube-node-lease`` renewed every quarter of
  ``--lease-s``; a node found not Ready (the process was killed and came back) is set
  Ready again, as a restarted kubelet does;
* **pods** bound to those nodes: Running at once with unready containers, Ready after the
  duration in the pod's ``chaosrec.io/startup-delay`` annotation (``"3s"``, ``"1500ms"``:
  image pull plus model load; 0 without it); a pod being deleted is removed when its
  grace period ends (its ``deletionTimestamp``), when a kubelet would have killed it.

No container ever runs. Killing this process is killing the group's kubelets: leases
stop, the node controller marks the nodes NotReady, taints them, and evicts.

Run as ``python -m chaosrec.adapters.kubernetes.kubelets --server URL --ca CA --cert C
--key K --group G``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import heapq
import json
import signal
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

__all__ = ["main", "parse_duration_s"]

KUBELETS_LABEL = "chaosrec.io/kubelets"
STARTUP_ANNOTATION = "chaosrec.io/startup-delay"
_MERGE = {"Content-Type": "application/merge-patch+json"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Kubelets:
    """The simulated kubelets of the nodes matching ``selector``."""

    def __init__(self, http: httpx.Client, server: str, selector: str, lease_s: int) -> None:
        self.http = http
        self.server = server.rstrip("/")
        self.selector = selector
        self.lease_s = lease_s
        self.nodes: dict[str, str] = {}  # name -> uid
        self.stop = threading.Event()
        self._ready_at: list[tuple[float, str, str, str]] = []  # (when, ns, name, uid)
        self._delete_at: list[tuple[float, str, str, str]] = []
        self._lock = threading.Lock()

    # -- nodes ---------------------------------------------------------------------------

    def sync_nodes(self) -> set[str]:
        """Adopt new nodes of the group, forget deleted ones; the names adopted now."""
        response = self.http.get(
            f"{self.server}/api/v1/nodes", params={"labelSelector": self.selector}
        )
        response.raise_for_status()
        seen: dict[str, str] = {}
        adopted: set[str] = set()
        for node in response.json().get("items", []):
            name, uid = node["metadata"]["name"], node["metadata"]["uid"]
            seen[name] = uid
            if self.nodes.get(name) != uid or not _ready(node):
                self._node_status(name)
                self._renew(name, uid)
                adopted.add(name)
        with self._lock:
            self.nodes = seen
        return adopted

    def _node_status(self, name: str) -> None:
        now = _now()

        def cond(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }  # fmt: skip

        status = {
            "phase": "Running",
            "conditions": [
                cond("Ready", "True", "KubeletReady", "simulated kubelet is posting ready status"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
                cond("NetworkUnavailable", "False", "RouteCreated", "simulated"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "chaosrec-simulated",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "chaosrec-simulated://0",
                "kernelVersion": "",
                "osImage": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
        self.http.patch(
            f"{self.server}/api/v1/nodes/{name}/status",
            content=json.dumps({"status": status}),
            headers=_MERGE,
        )

    def _renew(self, name: str, uid: str) -> None:
        url = f"{self.server}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": self.lease_s,
            "renewTime": _micro_now(),
        }
        response = self.http.patch(
            f"{url}/{name}", content=json.dumps({"spec": spec}), headers=_MERGE
        )
        if response.status_code == 404:
            owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}
            body = {"metadata": {"name": name, "ownerReferences": [owner]}, "spec": spec}
            self.http.post(
                url, content=json.dumps(body), headers={"Content-Type": "application/json"}
            )

    def node_loop(self) -> None:
        renew_every = max(1.0, self.lease_s / 4)
        last_renew = 0.0
        while not self.stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                adopted = self.sync_nodes()
                for name in adopted:
                    self.sync_pods_on(name)
                if time.monotonic() - last_renew >= renew_every:
                    last_renew = time.monotonic()
                    for name, uid in list(self.nodes.items()):
                        self._renew(name, uid)
            self.stop.wait(0.5)

    # -- pods ----------------------------------------------------------------------------

    def sync_pods_on(self, node: str) -> None:
        response = self.http.get(
            f"{self.server}/api/v1/pods", params={"fieldSelector": f"spec.nodeName={node}"}
        )
        if response.is_success:
            for pod in response.json().get("items", []):
                self.handle_pod(pod)

    def handle_pod(self, pod: dict[str, Any]) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        if spec.get("nodeName") not in self.nodes:
            return
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if meta.get("deletionTimestamp"):
            when = dt.datetime.strptime(meta["deletionTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
            left = (when.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)).total_seconds()
            with self._lock:
                heapq.heappush(self._delete_at, (time.monotonic() + max(0.0, left), ns, name, uid))
            return
        if status.get("startTime"):
            return
        now = _now()
        containers = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": c.get("image", ""),
                "ready": False,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in spec.get("containers", [])
        ]
        body = {
            "status": {
                "phase": "Running",
                "startTime": now,
                "hostIP": "10.0.0.1",
                "podIP": "10.244.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": now},
                    {"type": "Ready", "status": "False", "lastTransitionTime": now},
                ],
                "containerStatuses": containers,
            }
        }
        self.http.patch(
            f"{self.server}/api/v1/namespaces/{ns}/pods/{name}/status",
            content=json.dumps(body),
            headers=_MERGE,
        )
        delay_s = parse_duration_s((meta.get("annotations") or {}).get(STARTUP_ANNOTATION, "0"))
        with self._lock:
            heapq.heappush(self._ready_at, (time.monotonic() + delay_s, ns, name, uid))

    def ready_loop(self) -> None:
        while not self.stop.is_set():
            due: list[tuple[float, str, str, str]] = []
            gone: list[tuple[float, str, str, str]] = []
            with self._lock:
                while self._ready_at and self._ready_at[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._ready_at))
                while self._delete_at and self._delete_at[0][0] <= time.monotonic():
                    gone.append(heapq.heappop(self._delete_at))
            for _, ns, name, uid in due:
                with contextlib.suppress(httpx.HTTPError):
                    self._set_ready(ns, name, uid)
            for _, ns, name, uid in gone:
                with contextlib.suppress(httpx.HTTPError):
                    self.http.request(
                        "DELETE",
                        f"{self.server}/api/v1/namespaces/{ns}/pods/{name}",
                        content=json.dumps(
                            {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
                        ),
                        headers={"Content-Type": "application/json"},
                    )
            self.stop.wait(0.05)

    def _set_ready(self, ns: str, name: str, uid: str) -> None:
        url = f"{self.server}/api/v1/namespaces/{ns}/pods/{name}"
        pod = self.http.get(url)
        if not pod.is_success:
            return
        data = pod.json()
        if data["metadata"]["uid"] != uid or data["metadata"].get("deletionTimestamp"):
            return
        now = _now()
        containers = []
        for c in data.get("status", {}).get("containerStatuses") or []:
            containers.append({**c, "ready": True})
        conditions = [
            {**c, "status": "True", "lastTransitionTime": now}
            if c.get("type") in ("Ready", "ContainersReady")
            else c
            for c in data.get("status", {}).get("conditions") or []
        ]
        body = {"status": {"conditions": conditions, "containerStatuses": containers}}
        self.http.patch(f"{url}/status", content=json.dumps(body), headers=_MERGE)

    def watch_pods(self) -> None:
        while not self.stop.is_set():
            try:
                listing = self.http.get(f"{self.server}/api/v1/pods")
                listing.raise_for_status()
                data = listing.json()
                for pod in data.get("items", []):
                    self.handle_pod(pod)
                version = data["metadata"]["resourceVersion"]
                for event in self._events(version):
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self.handle_pod(event["object"])
            except (httpx.HTTPError, ValueError, KeyError):
                self.stop.wait(0.5)

    def _events(self, version: str) -> Iterator[dict[str, Any]]:
        params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "false"}
        with self.http.stream(
            "GET", f"{self.server}/api/v1/pods", params=params, timeout=httpx.Timeout(5, read=None)
        ) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.strip():
                    event: dict[str, Any] = json.loads(line)
                    if event.get("type") == "ERROR":
                        return  # e.g. 410 Gone: list again
                    yield event


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(text: str) -> float:
    """Seconds in a Go-style duration (``"3s"``, ``"1500ms"``, ``"1m30s"``; a bare number is
    seconds); 0 for anything else."""
    import re

    text = str(text).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return 0.0
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _ready(node: dict[str, Any]) -> bool:
    for condition in node.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--group", default="default")
    parser.add_argument("--lease-s", type=int, default=40)
    args = parser.parse_args(argv)
    selector = f"!{KUBELETS_LABEL}" if args.group == "default" else f"{KUBELETS_LABEL}={args.group}"
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    http = httpx.Client(verify=context, timeout=10)
    kubelets = Kubelets(http, args.server, selector, args.lease_s)
    signal.signal(signal.SIGTERM, lambda *_: kubelets.stop.set())
    threads = [
        threading.Thread(target=loop, daemon=True, name=loop.__name__)
        for loop in (kubelets.node_loop, kubelets.watch_pods, kubelets.ready_loop)
    ]
    for thread in threads:
        thread.start()
    print(f"simulated kubelets for nodes {selector} on {args.server}", flush=True)
    while not kubelets.stop.wait(0.5):
        pass
    http.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Triton Inference Server's model-control and readiness API (KServe v2 over HTTP).

The one implementation of "load, unload, which version is served, is the model
ready" for a Triton that runs with ``--model-control-mode=explicit``: the embedded
stack's replicas use it, and so does the Chaos Toolkit front acting on a stack
that runs in another process.

Which version a load serves is decided by the model's ``config.pbtxt``
(``version_policy``), not by the load request, so :meth:`TritonModelControl.load`
rewrites that line in the repository first when a version is given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from chaosrec.adapters import http as _http
from chaosrec.errors import StackError

__all__ = ["TritonModelControl", "set_served_version"]

_VERSION_POLICY = re.compile(r"version_policy: \{ specific: \{ versions: \[\d+\] \} \}")


def set_served_version(config_pbtxt: Path, version: int) -> None:
    """Make the model's ``version_policy`` serve exactly ``version`` (next load)."""
    text = config_pbtxt.read_text(encoding="utf-8")
    policy = f"version_policy: {{ specific: {{ versions: [{int(version)}] }} }}"
    updated, count = _VERSION_POLICY.subn(policy, text)
    if count != 1:
        raise StackError(
            f"{config_pbtxt} has no single `version_policy: {{ specific: ... }}` line to "
            "change; was it written by chaosrec?"
        )
    config_pbtxt.write_text(updated, encoding="utf-8")


class TritonModelControl:
    """One model on one Triton server.

    :param url: the server's HTTP endpoint, e.g. ``http://127.0.0.1:8000``.
    :param model: the model's name in the repository.
    :param model_dir: the model's folder in the repository (``<repo>/<model>``), needed
        to choose the served version; None when only load/unload/readiness are used.
    :param label: how errors name the server (a replica id).
    """

    def __init__(
        self, url: str, model: str, *, model_dir: Path | None = None, label: str = ""
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.model_dir = model_dir
        self.label = label or self.url

    def ready(self, timeout_s: float = 1.0) -> bool:
        """Per-model readiness (``/v2/health/ready`` stays 200 while a model is
        unloaded). Raises :class:`httpx.HTTPError` when the server is unreachable."""
        resp = _http.get(f"{self.url}/v2/models/{self.model}/ready", timeout=timeout_s)
        return resp.status_code == 200

    def ready_or_false(self) -> bool:
        """:meth:`ready`, but False instead of raising when the server is unreachable."""
        try:
            return self.ready()
        except httpx.HTTPError:
            return False

    def served_version(self) -> str | None:
        """The version served now (None if the model is not ready)."""
        resp = _http.get(f"{self.url}/v2/models/{self.model}", timeout=2.0)
        if resp.status_code != 200:
            return None
        versions = resp.json().get("versions") or []
        return str(versions[0]) if versions else None

    def server_metadata(self) -> dict[str, Any]:
        """``GET /v2``: the server's name, version and extensions."""
        resp = _http.get(f"{self.url}/v2", timeout=2.0)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def unload(self) -> None:
        """Unload the model through model control."""
        self._control("unload")

    def load(self, version: int | None = None) -> None:
        """(Re)load the model; with ``version``, serving exactly that version."""
        if version is not None:
            if self.model_dir is None:
                raise StackError(
                    f"{self.label}: choosing a version needs the model's repository folder"
                )
            set_served_version(self.model_dir / "config.pbtxt", version)
        self._control("load")

    def _control(self, action: str) -> None:
        url = f"{self.url}/v2/repository/models/{self.model}/{action}"
        resp = _http.post(url, timeout=60.0)
        if resp.status_code != 200:
            raise StackError(
                f"{self.label}: Triton refused to {action} model {self.model!r}: "
                f"{resp.text.strip()[:300]}"
            )

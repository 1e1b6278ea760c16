"""A client for the recommender gateway's operational endpoints: health, metrics, policy.

The one implementation of "is every replica healthy", "wait until it is", "how
many requests went where" and "change the resilience policy", used by the embedded
stack, by remote targets and by the guardrails. Works against chaosrec's reference
gateway and any gateway exposing the same ``/healthz`` and Prometheus names.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from chaosrec.adapters import http as _http
from chaosrec.core.redact import redact_text, redact_url
from chaosrec.errors import ConfigError, StackError

__all__ = ["GatewayClient", "RequestCounts"]

_REQUESTS = "chaosrec_gateway_requests_total{"
_ATTEMPTS = "chaosrec_gateway_upstream_attempts_total{"


def _label(labels: str, name: str) -> str:
    marker = f'{name}="'
    if marker not in labels:
        return ""
    return labels.split(marker, 1)[1].split('"', 1)[0]


class RequestCounts:
    """Cumulative request counters from the gateway's ``/metrics`` (bad requests, the
    client's fault, excluded): ``total``, ``errors`` (not answered 2xx) and
    ``degraded`` (answered from the fallback)."""

    __slots__ = ("degraded", "errors", "total")

    def __init__(self, total: int, errors: int, degraded: int) -> None:
        self.total = total
        self.errors = errors
        self.degraded = degraded

    def __sub__(self, earlier: RequestCounts) -> RequestCounts:
        return RequestCounts(
            self.total - earlier.total,
            self.errors - earlier.errors,
            self.degraded - earlier.degraded,
        )

    def __repr__(self) -> str:
        return f"RequestCounts(total={self.total}, errors={self.errors}, degraded={self.degraded})"


class GatewayClient:
    """The gateway at ``url`` (e.g. ``http://127.0.0.1:8080``).

    :param admin_token: bearer token for ``/admin/*`` (the reference gateway
        requires one; the embedded stack hands it out).
    """

    def __init__(self, url: str, *, admin_token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.shown = redact_url(self.url)  # for messages: never the credentials
        self.admin_token = admin_token

    def __repr__(self) -> str:  # never shows the token
        return f"GatewayClient({self.shown!r})"

    # -- health ---------------------------------------------------------------------

    def health(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """``/healthz`` as a mapping (``status``, ``replicas`` by id with ``healthy``)."""
        resp = _http.get(f"{self.url}/healthz", timeout=timeout_s)
        data: dict[str, Any] = resp.json()
        return data

    def all_healthy(self, timeout_s: float = 1.0) -> bool:
        """True when the gateway answers 200 and reports every replica healthy."""
        resp = _http.get(f"{self.url}/healthz", timeout=timeout_s)
        return resp.status_code == 200 and resp.json().get("status") == "ok"

    def wait_healthy(self, timeout_s: float = 30.0, *, hint: str = "") -> float:
        """Block until every replica is healthy; seconds waited.

        Raises:
            StackError: not healthy within ``timeout_s`` (``hint`` says where to look).
        """
        started = time.monotonic()
        while True:
            try:
                if self.all_healthy():
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() - started > timeout_s:
                where = f" and {hint}" if hint else ""
                raise StackError(
                    f"the gateway did not report every replica healthy within "
                    f"{timeout_s:.0f} s; see {self.shown}/healthz{where}"
                )
            time.sleep(0.05)

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        """Raise a clear error now if the gateway does not answer (before any fault)."""
        try:
            _http.get(f"{self.url}/healthz", timeout=timeout_s)
        except httpx.HTTPError as err:
            why = redact_text(str(err))
            raise StackError(
                f"the recommender gateway at {self.shown} is unreachable ({why}); "
                "start it or fix gateway_url in the target config"
            ) from err

    # -- metrics --------------------------------------------------------------------

    def metrics_text(self, timeout_s: float = 2.0) -> str:
        return _http.get(f"{self.url}/metrics", timeout=timeout_s).text

    def request_counts(self, timeout_s: float = 1.0) -> RequestCounts:
        """The cumulative request counters (see :class:`RequestCounts`)."""
        total = errors = degraded = 0
        for line in self.metrics_text(timeout_s).splitlines():
            if not line.startswith(_REQUESTS):
                continue
            labels, _, value = line.rpartition(" ")
            outcome = _label(labels, "outcome")
            count = int(float(value))
            if outcome == "bad_request":
                continue  # the client's fault, not the service's
            total += count
            if outcome == "degraded":
                degraded += count
            elif outcome != "ok":
                errors += count
        return RequestCounts(total, errors, degraded)

    def upstream_attempts(self, replicas: tuple[str, ...]) -> int | None:
        """Attempts the gateway sent to these replicas so far (None: the gateway has no
        such metric, or is unreachable)."""
        try:
            text = self.metrics_text()
        except httpx.HTTPError:
            return None
        if _ATTEMPTS not in text and _REQUESTS not in text:
            return None
        total = 0
        for line in text.splitlines():
            if line.startswith(_ATTEMPTS):
                labels, _, value = line.rpartition(" ")
                if _label(labels, "replica") in replicas:
                    total += int(float(value))
        return total

    # -- policy ---------------------------------------------------------------------

    def _admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    def policy(self) -> dict[str, Any]:
        """The gateway's live resilience policy."""
        resp = _http.get(f"{self.url}/admin/policy", timeout=2.0, headers=self._admin_headers())
        if resp.status_code != 200:
            raise ConfigError(f"gateway refused to show its policy: {resp.text.strip()[:200]}")
        data: dict[str, Any] = resp.json()
        return data

    def set_policy(self, **changes: Any) -> dict[str, Any]:
        """Change the policy at run time; the new policy."""
        resp = _http.post(
            f"{self.url}/admin/policy", json=changes, timeout=2.0, headers=self._admin_headers()
        )
        if resp.status_code != 200:
            raise ConfigError(f"gateway refused policy {changes}: {resp.text.strip()[:200]}")
        data: dict[str, Any] = resp.json()
        return data

"""Who owns each fault on a Toxiproxy server, so that no fault outlives its session and
two sessions sharing a server never undo each other.

Toxiproxy keeps no metadata, so chaosrec keeps a small **ledger on the server
itself**, readable by any session on any machine, made of disabled proxies (they
bind nothing) whose names say what they record (:data:`LEDGER_PREFIX` ``= "chaosrec~"``):

* ``chaosrec~session~<sid>``: a live session. Its ``latency`` toxic named ``lease``
  holds, as its latency attribute, the Unix time until which the session vouches
  for itself; a heartbeat renews it every :data:`LEASE_S` / 3 seconds.
* ``chaosrec~claim~<sid>~<proxy>``: the session holds a fault on ``<proxy>``.
* ``chaosrec~down~<sid>~<proxy>``: the session disabled ``<proxy>`` (it was enabled).
* every toxic chaosrec adds is named ``chaosrec~<sid>~<kind>~<random>``.

``<sid>`` is ``<host>_<pid>_<start ticks>_<random>``: a session on the same host is
known dead as soon as its process is gone (pid and start time no longer match); a
session on another host is dead when its lease expired or its session marker is gone.

**Rules.**

* *One owner per proxy.* A fault on a proxy that another *live* session holds is
  refused with :class:`~chaosrec.errors.TargetBusyError`, before anything is
  injected; the check is race-free because each session first creates its own
  claim and then looks for others' (two sessions racing both back off). Faults of
  one session may overlap on a proxy (a latency and a proxy-down, say).
* *Nothing outlives a dead session.* :meth:`FaultLedger.sweep` (run when a session
  starts using a server, and when a claim meets a dead owner) removes dead sessions'
  toxics, re-enables the proxies they disabled, and deletes their ledger entries;
  what it swept is returned so the caller can report it.
* *Crash-safe order.* A claim or down marker is written before the fault and removed
  after it is reverted, and toxic names carry the owner, so a session killed at any
  point leaves enough on the server for the next sweep.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from chaosrec.adapters.process.identity import ProcessIdentity
from chaosrec.adapters.toxiproxy import LEDGER_PREFIX, Proxy, ToxiproxyClient
from chaosrec.errors import TargetBusyError, ToxiproxyError, UnknownTargetError

__all__ = ["LEASE_S", "FaultLedger", "SessionId", "SweptFault", "close_all", "ledger_for"]

LEASE_S = 30.0
_SESSION, _CLAIM, _DOWN, _LEASE = "session", "claim", "down", "lease"
_NOWHERE = "127.0.0.1:9"  # ledger proxies are disabled: this upstream is never dialled


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


@dataclass(frozen=True)
class SessionId:
    """A chaosrec session: the host and process it runs in, plus a random tag."""

    host: str
    pid: int
    start_ticks: int
    tag: str

    @classmethod
    def this_process(cls) -> SessionId:
        me = ProcessIdentity.current()
        return cls(_host(), me.pid, me.start_ticks, secrets.token_hex(3))

    @classmethod
    def parse(cls, text: str) -> SessionId | None:
        parts = text.split("_")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]), parts[3])

    def __str__(self) -> str:
        return f"{self.host}_{self.pid}_{self.start_ticks}_{self.tag}"

    def describe(self) -> str:
        return f"session {self} (host {self.host}, pid {self.pid})"

    def runs_here(self) -> bool:
        return self.host == _host()

    def process_alive(self) -> bool:
        """Same host only: is the session's process still running?"""
        return ProcessIdentity(self.pid, self.start_ticks).is_running()


@dataclass(frozen=True)
class SweptFault:
    """A fault a dead session left on the server, removed by a sweep."""

    session: str
    what: str  # "latency toxic on region-a.r0", "proxy region-b.r0 down"

    def describe(self) -> str:
        return f"{self.what} (left by dead session {self.session})"


def _ledger_name(kind: str, sid: SessionId | str, proxy: str | None = None) -> str:
    base = f"{LEDGER_PREFIX}{kind}~{sid}"
    return base if proxy is None else f"{base}~{proxy}"


def _parse_ledger(name: str) -> tuple[str, str, str | None] | None:
    """``(kind, sid, proxy)`` of a ledger proxy name, None if it is not one."""
    if not name.startswith(LEDGER_PREFIX):
        return None
    parts = name[len(LEDGER_PREFIX) :].split("~", 2)
    if len(parts) < 2:
        return None
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _toxic_owner(toxic_name: str) -> str | None:
    if not toxic_name.startswith(LEDGER_PREFIX):
        return None
    parts = toxic_name[len(LEDGER_PREFIX) :].split("~", 1)
    return parts[0] if parts else None


class FaultLedger:
    """This session's ownership of faults on one Toxiproxy server (see module docs).

    One per process and server: get it with :func:`ledger_for`.
    """

    def __init__(
        self, client: ToxiproxyClient, session: SessionId | None = None, *, lease_s: float = LEASE_S
    ) -> None:
        self.client = client
        self.session = session or SessionId.this_process()
        self.lease_s = lease_s
        self.swept: list[SweptFault] = []
        self._claims: dict[str, int] = {}  # proxy -> faults of this session on it
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._started = False

    # -- session --------------------------------------------------------------------

    def start(self) -> list[SweptFault]:
        """Sweep what dead sessions left, then register this session (idempotent).
        Returns what was swept."""
        with self._lock:
            if self._started:
                return []
            swept = self.sweep()
            self._register()
            self._started = True
            self._heartbeat = threading.Thread(
                target=self._beat, name="chaosrec-fault-lease", daemon=True
            )
            self._heartbeat.start()
            return swept

    def close(self) -> None:
        """Stop renewing the lease and remove this session's ledger entries (after every
        fault was reverted; an entry still claimed is left for the next sweep)."""
        self._stop.set()
        with self._lock:
            if not self._started:
                return
            self._started = False
            if self._claims:
                return  # faults still on: let the next session sweep them
            with contextlib.suppress(ToxiproxyError, UnknownTargetError):
                self.client.delete_proxy(_ledger_name(_SESSION, self.session))

    def _register(self) -> None:
        name = _ledger_name(_SESSION, self.session)
        with contextlib.suppress(ToxiproxyError):  # exists already: keep it
            self.client.create_proxy(name, _NOWHERE, enabled=False)
        self._renew()

    def _renew(self) -> None:
        name = _ledger_name(_SESSION, self.session)
        expires = int(time.time() + self.lease_s)
        try:
            self.client.update_toxic(name, _LEASE, {"latency": expires})
        except UnknownTargetError:
            try:
                self.client.add_toxic(name, "latency", {"latency": expires}, name=_LEASE)
            except UnknownTargetError:  # the marker itself is gone (a reset, or deleted)
                self.client.create_proxy(name, _NOWHERE, enabled=False)
                self.client.add_toxic(name, "latency", {"latency": expires}, name=_LEASE)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with contextlib.suppress(ToxiproxyError, UnknownTargetError):
                self._renew()

    # -- naming ---------------------------------------------------------------------

    def toxic_name(self, kind: str) -> str:
        """A toxic name that says this session owns it."""
        return f"{LEDGER_PREFIX}{self.session}~{kind}~{secrets.token_hex(3)}"

    # -- claims ---------------------------------------------------------------------

    def claim(self, proxies: Iterable[str], fault: str) -> None:
        """Hold ``proxies`` for ``fault`` (counted per proxy within this session).

        Raises:
            TargetBusyError: another live session holds one of them; nothing is kept.
        """
        proxies = tuple(proxies)
        with self._lock:
            new = [p for p in proxies if self._claims.get(p, 0) == 0]
            made: list[str] = []
            try:
                for proxy in new:
                    self.client.create_proxy(
                        _ledger_name(_CLAIM, self.session, proxy), _NOWHERE, enabled=False
                    )
                    made.append(proxy)
                if new:
                    self._check_exclusive(new, fault)
            except BaseException:
                for proxy in made:
                    with contextlib.suppress(ToxiproxyError, UnknownTargetError):
                        self.client.delete_proxy(_ledger_name(_CLAIM, self.session, proxy))
                raise
            for proxy in proxies:
                self._claims[proxy] = self._claims.get(proxy, 0) + 1

    def release(self, proxies: Iterable[str]) -> None:
        """Undo one :meth:`claim` of ``proxies``; the last release removes the entry."""
        with self._lock:
            for proxy in proxies:
                count = self._claims.get(proxy, 0) - 1
                if count > 0:
                    self._claims[proxy] = count
                    continue
                self._claims.pop(proxy, None)
                with contextlib.suppress(UnknownTargetError):
                    self.client.delete_proxy(_ledger_name(_CLAIM, self.session, proxy))

    def mark_down(self, proxy: str) -> None:
        """Record, before disabling ``proxy``, that this session disables it."""
        with contextlib.suppress(ToxiproxyError):  # already recorded
            self.client.create_proxy(
                _ledger_name(_DOWN, self.session, proxy), _NOWHERE, enabled=False
            )

    def unmark_down(self, proxy: str) -> None:
        """Remove the record, after ``proxy`` was enabled again."""
        with contextlib.suppress(UnknownTargetError):
            self.client.delete_proxy(_ledger_name(_DOWN, self.session, proxy))

    def _check_exclusive(self, proxies: list[str], fault: str) -> None:
        everything = self.client.proxies(include_ledger=True)
        owners = self._owners(everything)
        mine = str(self.session)
        dead: set[str] = set()
        for proxy in proxies:
            for sid in sorted(owners.get(proxy, set()) - {mine}):
                if self._alive(sid, everything):
                    who = SessionId.parse(sid)
                    holder = who.describe() if who else f"session {sid}"
                    raise TargetBusyError(
                        f"{fault} refused: proxy {proxy!r} on {self.client.api_url} is held "
                        f"by another live chaosrec {holder}; wait for it to end, or drill "
                        "against another Toxiproxy server"
                    )
                dead.add(sid)
        if dead:
            self.sweep()

    # -- the sweep ------------------------------------------------------------------

    @staticmethod
    def _owners(everything: dict[str, Proxy]) -> dict[str, set[str]]:
        """proxy -> sessions holding a claim, a down record or a toxic on it."""
        owners: dict[str, set[str]] = {}
        for name, proxy in everything.items():
            parsed = _parse_ledger(name)
            if parsed is not None:
                kind, sid, target = parsed
                if kind in (_CLAIM, _DOWN) and target is not None:
                    owners.setdefault(target, set()).add(sid)
                continue
            for toxic in proxy.toxics:
                owner = _toxic_owner(toxic.name)
                if owner is not None:
                    owners.setdefault(name, set()).add(owner)
        return owners

    def _alive(self, sid: str, everything: dict[str, Proxy]) -> bool:
        if sid == str(self.session):
            return True
        session = SessionId.parse(sid)
        if session is not None and session.runs_here():
            return session.process_alive()
        marker = everything.get(_ledger_name(_SESSION, sid))
        if marker is None:
            return False
        lease = next((t for t in marker.toxics if t.name == _LEASE), None)
        if lease is None:
            return True  # a reset removed it; its owner's heartbeat puts it back
        return int(lease.attributes.get("latency", 0)) >= time.time()

    def sweep(self) -> list[SweptFault]:
        """Remove what sessions that are no longer alive left on the server."""
        with self._lock:
            everything = self.client.proxies(include_ledger=True)
            swept: list[SweptFault] = []
            verdicts: dict[str, bool] = {}

            def dead(sid: str) -> bool:
                if sid not in verdicts:
                    verdicts[sid] = not self._alive(sid, everything)
                return verdicts[sid]

            for name, proxy in everything.items():
                if name.startswith(LEDGER_PREFIX):
                    continue
                for toxic in proxy.toxics:
                    owner = _toxic_owner(toxic.name)
                    if owner is not None and dead(owner):
                        with contextlib.suppress(UnknownTargetError):
                            self.client.remove_toxic(name, toxic.name)
                        swept.append(SweptFault(owner, f"{toxic.type} toxic on {name}"))
            for name in everything:
                parsed = _parse_ledger(name)
                if parsed is None or not dead(parsed[1]):
                    continue
                kind, sid, target = parsed
                held = everything.get(target) if kind == _DOWN and target is not None else None
                if held is not None and not held.enabled:
                    self.client.set_enabled(held.name, True)
                    swept.append(SweptFault(sid, f"proxy {held.name} down"))
                with contextlib.suppress(UnknownTargetError):
                    self.client.delete_proxy(name)
            self.swept.extend(swept)
            return swept


_ledgers: dict[str, FaultLedger] = {}
_ledgers_lock = threading.Lock()
_session: SessionId | None = None


def ledger_for(client: ToxiproxyClient) -> FaultLedger:
    """This process's :class:`FaultLedger` for ``client``'s server (one per server URL,
    with a client of its own), started (swept and registered) on first use."""
    global _session
    with _ledgers_lock:
        ledger = _ledgers.get(client.api_url)
        if ledger is None:
            if _session is None:
                _session = SessionId.this_process()
                atexit.register(close_all)
            ledger = FaultLedger(ToxiproxyClient(client.api_url), _session)
            _ledgers[client.api_url] = ledger
    ledger.start()
    return ledger


def close_all() -> None:
    """Close every ledger of this process (at the end of a session, and at exit)."""
    with _ledgers_lock:
        ledgers = list(_ledgers.values())
        _ledgers.clear()
    for ledger in ledgers:
        with contextlib.suppress(ToxiproxyError, UnknownTargetError, RuntimeError):
            ledger.close()
        ledger.client.close()

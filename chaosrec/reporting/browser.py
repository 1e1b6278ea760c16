"""Check in headless Chromium that a built drill report renders.

Opens the report's ``index.html`` from disk (the single-file build needs no server) in
headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``, no
extra package), waits until the page shows what a person should see, then takes a
screenshot and reads the rendered text. A virtual-time budget (``--screenshot`` with
``--virtual-time-budget``) is not used: measured here, it sometimes captured the
report's loading spinner.

Checked: every drill's name on the overview; the phase steps, the timeline chart and
the SLO verdict on one drill's page.

Example::

    check = check_report(built.index, Path("reports/screenshots"), drills=["test_x"])
    check.overview_png, check.drill_png, check.problems   # [] when it renders
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.adapters.tools import install_chromium
from chaosrec.errors import ConfigError, SetupError

__all__ = ["Page", "RenderCheck", "Tab", "check_report", "drill_id", "open_page"]

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run")


# Puts the pipe ends on the fds Chromium expects (3: commands in, 4: answers out), then
# becomes Chromium. (A shell cannot do it: dash refuses fd numbers above 9.)
_LAUNCH = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


# Installed before any page script runs: keeps the page's script errors in a global
_ERROR_HOOK = """(() => {
  const errors = (window.__chaosrecErrors = []);
  const keep = (what) => { if (errors.length < 50) errors.push(String(what).slice(0, 500)); };
  addEventListener("error", (e) => keep(e.message));
  addEventListener("unhandledrejection", (e) => keep((e.reason && e.reason.stack) || e.reason));
  const original = console.error;
  console.error = (...args) => { keep(args.map(String).join(" ")); original(...args); };
})();"""
_ERRORS = "JSON.stringify(window.__chaosrecErrors || [])"
# the visible text of every same-origin frame (Allure 3 renders a description in one)
_FRAMES_TEXT = """Array.from(document.querySelectorAll("iframe")).map((frame) => {
  try { return frame.contentDocument.body.innerText; } catch (e) { return ""; }
}).join("\\n")"""
# clicks the arrow of every collapsed group of the report's tree (a collapsed group's
# section has no content element after it); how many it clicked
_EXPAND_COLLAPSED = """(() => {
  let clicked = 0;
  for (const section of document.querySelectorAll('[data-testid="tree-section"]')) {
    const arrow = section.querySelector('[data-testid="tree-arrow"]');
    if (!section.nextElementSibling && arrow) { arrow.click(); clicked++; }
  }
  return String(clicked);
})()"""
_FETCH_FAILED = "Failed to fetch"


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are numbered >= 10, so moving them to fds 3 and 4 cannot clobber
    one end with the other (the ends of a plain pipe may be fds 3 and 4 themselves)."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class _DevTools:
    """A DevTools-protocol connection to one headless Chromium over its debugging pipe."""

    def __init__(self, binary: Path, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        to_browser_r, self._to_browser = _high_pipe()
        self._from_browser, from_browser_w = _high_pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4
        self.proc = subprocess.Popen(
            [
                sys.executable, "-c", _LAUNCH, str(to_browser_r), str(from_browser_w),
                str(binary), *_FLAGS, "--remote-debugging-pipe", "about:blank",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError as err:
            self.proc.wait(timeout=10)
            raise SetupError(
                f"chromium exited before {method}: {self._stderr_tail()}; run it with "
                "--headless by hand to see why"
            ) from err
        deadline = time.monotonic() + self.timeout_s
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") != self._next_id:
                    continue  # an event, or the answer to nobody
                if "error" in answer:
                    raise SetupError(f"chromium refused {method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise SetupError(f"chromium did not answer {method} within {self.timeout_s:g} s")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise SetupError(
                        f"chromium exited while answering {method}: "
                        f"{self._stderr_tail()}; check that it starts with --headless"
                    )
                self._buffer += chunk

    def _stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "still running"
        lines = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self.proc.returncode}"

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                os.write(
                    self._to_browser,
                    json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0",
                )
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            for fd in (self._to_browser, self._from_browser):
                with contextlib.suppress(OSError):
                    os.close(fd)
            if self.proc.stderr is not None:
                self.proc.stderr.close()


@dataclass
class Page:
    """A page as rendered: its visible text, its HTML and a PNG screenshot."""

    url: str
    text: str
    html: str
    png: bytes
    errors: list[str] = field(default_factory=list)
    reloads: int = 0
    #: the rendered text of the page's frames (an Allure 3 result's description is one)
    frames_text: str = ""


class Tab:
    """One headless Chromium tab driven over the DevTools protocol; a context manager.

    ``goto`` loads a URL, ``show`` switches a single-page app's route (``location.hash``)
    the way a click does, and both wait until the visible text holds every string of
    ``wait_for`` (polled every 100 ms, at most ``timeout_s``) before capturing the page.
    A page is captured even when the wait timed out, so the caller can show what was
    rendered instead; compare ``wait_for`` with :attr:`Page.text`.

    The page's script errors (uncaught errors, unhandled rejections, ``console.error``)
    are kept in :attr:`Page.errors`. The Allure 3 single-file report reads its own data
    with ``fetch()`` of ``data:`` URLs; measured here with both cores busy, 1 load in
    20 to 40 had such a fetch fail ("Failed to fetch tree filters data"), and the app
    never retries it: the overview then stays empty. When the wait is not met and the
    page logged a failed fetch, the tab reloads it, at most ``reloads`` times, and
    counts it in :attr:`Page.reloads`.

    :raises SetupError: Chromium cannot be started or stops answering.
    """

    def __init__(
        self, chromium: Path | None = None, timeout_s: float = 90.0, reloads: int = 2
    ) -> None:
        self.timeout_s = timeout_s
        self.reloads = reloads
        self._browser = _DevTools(chromium or install_chromium(), timeout_s)
        try:
            # the window Chromium opened itself: a page made with Target.createTarget
            # counts as hidden, and the report's overview never leaves its spinner there
            targets = self._browser.call("Target.getTargets")["targetInfos"]
            pages = [t["targetId"] for t in targets if t.get("type") == "page"]
            if not pages:
                raise SetupError("headless chromium opened no page; check its version")
            self._session = self._browser.call(
                "Target.attachToTarget", targetId=pages[0], flatten=True
            )["sessionId"]
            self._call("Page.enable")
            self._call("Page.addScriptToEvaluateOnNewDocument", source=_ERROR_HOOK)
            self._call("Page.bringToFront")
        except BaseException:
            self._browser.close()
            raise

    def __enter__(self) -> Tab:
        return self

    def __exit__(self, *exc: object) -> None:
        self._browser.close()

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        return self._browser.call(method, self._session, **params)

    def _evaluate(self, expression: str) -> str:
        result = self._call("Runtime.evaluate", expression=expression, returnByValue=True)
        return str(result.get("result", {}).get("value", ""))

    def goto(
        self, url: str, *, wait_for: tuple[str, ...] = (), size: tuple[int, int] = (1400, 1000)
    ) -> Page:
        """Load ``url`` in a ``size`` (width, height) viewport and capture it."""
        self._resize(size)
        self._call("Page.navigate", url=url)
        return self._capture(url, wait_for)

    def show(
        self, fragment: str, *, wait_for: tuple[str, ...] = (), size: tuple[int, int] = (1400, 1000)
    ) -> Page:
        """Route the loaded app to ``#fragment`` (as a click would) and capture it."""
        self._resize(size)
        self._evaluate(f"location.hash = {json.dumps(fragment)}")
        return self._capture(self._evaluate("location.href"), wait_for)

    def expand_tree(self, *, wait_for: tuple[str, ...], rounds: int = 8) -> Page:
        """Open the collapsed groups of an Allure 3 report's tree, a level at a time,
        until the visible text holds every string of ``wait_for`` (at most ``rounds``
        levels), then capture the page. The report opens its tree collapsed when every
        test passed (measured with Allure 3.18: a failed test's groups open by
        themselves)."""
        for _ in range(rounds):
            text = self._evaluate("document.body ? document.body.innerText : ''")
            if all(needle in text for needle in wait_for):
                break
            if self._evaluate(_EXPAND_COLLAPSED) == "0":
                break
            time.sleep(0.2)
        return self._capture(self._evaluate("location.href"), wait_for)

    def _resize(self, size: tuple[int, int]) -> None:
        self._call(
            "Emulation.setDeviceMetricsOverride",
            width=size[0],
            height=size[1],
            deviceScaleFactor=1,
            mobile=False,
        )

    def _errors(self) -> list[str]:
        return [str(e) for e in json.loads(self._evaluate(_ERRORS) or "[]")]

    def _capture(self, url: str, wait_for: tuple[str, ...]) -> Page:
        deadline = time.monotonic() + self.timeout_s
        reloads = 0
        while True:
            text = self._evaluate("document.body ? document.body.innerText : ''")
            if all(needle in text for needle in wait_for) or time.monotonic() > deadline:
                break
            if reloads < self.reloads and any(_FETCH_FAILED in e for e in self._errors()):
                reloads += 1  # the app gave up on its own data; a person would reload
                self._call("Page.reload", ignoreCache=True)
            time.sleep(0.1)
        time.sleep(0.3)  # let the last layout paint before the screenshot
        html = self._evaluate("document.documentElement.outerHTML")
        shot = self._call("Page.captureScreenshot", format="png")
        return Page(
            url=url,
            text=text,
            html=html,
            png=base64.b64decode(shot["data"]),
            errors=self._errors(),
            reloads=reloads,
            frames_text=self._evaluate(_FRAMES_TEXT),
        )


def open_page(
    url: str,
    *,
    wait_for: tuple[str, ...] = (),
    size: tuple[int, int] = (1400, 1000),
    chromium: Path | None = None,
    timeout_s: float = 90.0,
) -> Page:
    """Load ``url`` in a fresh tab, wait for ``wait_for`` (see :class:`Tab`), capture it."""
    with Tab(chromium, timeout_s) as tab:
        return tab.goto(url, wait_for=wait_for, size=size)


def drill_id(index: Path, scenario: str) -> str:
    """The id of one drill's page in an Allure 3 single-file report (its URL fragment)."""
    data = json.loads((index.parent / "test-results.json").read_text(encoding="utf-8"))
    for test_id, info in data.get("byId", {}).items():
        if info.get("name") == scenario:
            return str(test_id)
    names = sorted(info.get("name") for info in data.get("byId", {}).values())
    raise ConfigError(f"scenario={scenario!r} is not in the report; it has {names}")


@dataclass
class RenderCheck:
    """Screenshots taken and what was missing from the rendered pages (empty: it renders)."""

    overview_png: Path
    drill_png: Path
    drill: str
    problems: list[str] = field(default_factory=list)
    drill_text: str = ""
    overview_text: str = ""
    description_text: str = ""  #: the drill's rendered description (its own frame)
    reloads: int = 0  #: reloads after the report's own data fetch failed (see Tab)


def check_report(
    index: Path,
    out_dir: Path,
    *,
    drills: list[str],
    drill: str | None = None,
    chromium: Path | None = None,
    timeout_s: float = 90.0,
) -> RenderCheck:
    """Render ``index`` in headless Chromium, screenshot it and check it shows the drills.

    :param drills: scenario names the overview must show.
    :param drill: the scenario whose page is screenshotted (default: the first).
    """
    if not drills:
        raise ConfigError("drills=[] : name at least one drill the report must show")
    chosen = drill or drills[0]
    fragment = drill_id(index, chosen)
    out_dir.mkdir(parents=True, exist_ok=True)
    # phase steps, the SLO table in the description, the chart drawn there and attached
    wanted = ("baseline", "verify", "SLO verdict", "timeline.png")
    with Tab(chromium, timeout_s) as tab:
        # the tree's root (every chaosrec drill has the epic), then its groups opened
        tab.goto(index.resolve().as_uri(), wait_for=("DR drill",))
        overview = tab.expand_tree(wait_for=tuple(drills))
        # the way a person gets there: the app is loaded, then routed to the drill
        page = tab.show(fragment, wait_for=wanted, size=(1400, 2400))
    check = RenderCheck(
        overview_png=out_dir / "overview.png", drill_png=out_dir / "drill.png", drill=chosen
    )
    check.overview_png.write_bytes(overview.png)
    check.drill_png.write_bytes(page.png)
    check.drill_text = page.text
    check.overview_text = overview.text
    check.description_text = page.frames_text
    check.reloads = overview.reloads + page.reloads
    missing = [name for name in drills if name not in overview.text]
    check.problems += [f"overview does not show {name!r}" for name in missing]
    if missing:
        check.problems += [f"overview script error: {e}" for e in overview.errors]
    absent = [w for w in wanted if w not in page.text]
    check.problems += [f"page of {chosen!r} does not show {w!r}" for w in absent]
    if absent:
        check.problems += [f"page script error: {e}" for e in page.errors]
    if "data:image/png;base64" not in page.html:
        check.problems.append(f"page of {chosen!r} does not draw the timeline chart")
    return check

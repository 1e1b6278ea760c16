"""The ``chaosrec`` command line: setup, model, stack.

::

    chaosrec setup                      install Toxiproxy, prepare Triton, train the model
    chaosrec model train|eval|export    the reference recommender
    chaosrec stack up|status|down       the embedded stack, in the background
    chaosrec stack serve                the same stack in the foreground (Ctrl-C stops it)
    chaosrec report [RESULTS]           the HTML drill report (Allure) and drill summary
    chaosrec history                    drills over time: figures per run, score, trends
    chaosrec cluster up|status|down     a local Kubernetes control plane (kwok nodes)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from chaosrec.adapters.process.identity import ProcessIdentity
from chaosrec.adapters.process.manager import ManagedProcess
from chaosrec.core.redact import redact
from chaosrec.errors import ChaosrecError

__all__ = ["main"]


def _print(msg: str) -> None:
    print(msg, flush=True)


# -- setup ------------------------------------------------------------------------------


def cmd_setup(args: argparse.Namespace) -> int:
    from chaosrec.adapters.tools import ensure_toxiproxy, toxiproxy_version
    from chaosrec.stack.triton import find_triton

    started = time.monotonic()
    binary = ensure_toxiproxy()
    _print(f"toxiproxy-server {toxiproxy_version(binary)}: {binary}")
    dist = find_triton()
    _print(f"tritonserver (nvidia-pytriton {dist.version}): {dist.server}")
    _setup_report_tools()
    _setup_history_tools()
    _setup_kubernetes()
    if not args.skip_model:
        from chaosrec.model import ensure_model

        for variant in ("good", "bad"):
            artifact = ensure_model(variant)
            metrics = artifact.meta.get("metrics", {}).get("model", {})
            _print(
                f"model {variant}: version {artifact.version} "
                f"recall@10={metrics.get('recall@10', float('nan')):.3f} ({artifact.path})"
            )
    _print(f"setup done in {time.monotonic() - started:.1f} s")
    return 0


def _setup_report_tools() -> None:
    """The Allure CLI (npm) and Chromium (apt) for drill reports; without npm or root
    rights they are skipped with a message, since only reports need them."""
    from chaosrec.adapters.tools import allure_version, install_allure, install_chromium
    from chaosrec.errors import ToolNotFoundError

    try:
        allure = install_allure()
        _print(f"allure {allure_version(allure)}: {allure}")
    except ToolNotFoundError as err:
        _print(f"allure: skipped, drill reports cannot be built ({err})")
    try:
        _print(f"chromium: {install_chromium()}")
    except ToolNotFoundError as err:
        _print(f"chromium: skipped, rendered reports cannot be checked ({err})")


def _setup_history_tools() -> None:
    """Debian's PostgreSQL server (apt), to test a shared drill history on a real server;
    skipped with a message without root rights (SQLite, the default store, needs none)."""
    from chaosrec.adapters.tools.postgres import install_postgres, postgres_version
    from chaosrec.errors import ToolNotFoundError

    try:
        bindir = install_postgres()
        _print(f"postgresql {postgres_version(bindir)}: {bindir}")
    except ToolNotFoundError as err:
        _print(f"postgresql: skipped, a PostgreSQL drill history cannot be tested ({err})")


def _setup_kubernetes() -> None:
    """The local Kubernetes control plane's binaries, one line per tool."""
    from chaosrec.adapters.tools.kubernetes import KWOK_VERSION, ensure_kubernetes
    from chaosrec.errors import ToolNotFoundError

    try:
        binaries = ensure_kubernetes()
    except ToolNotFoundError as err:  # no root for apt, no Go: only the cluster tests need it
        _print(f"kubernetes: skipped, the local cluster cannot start ({err})")
        return
    versions = binaries.versions()
    for name, path in (
        ("etcd", binaries.etcd),
        ("kube-apiserver", binaries.kube_apiserver),
        ("kube-controller-manager", binaries.kube_controller_manager),
        ("kube-scheduler", binaries.kube_scheduler),
    ):
        _print(f"{name} {versions[name]}: {path}")
    if binaries.kwok is None:
        _print(
            f"kwok {KWOK_VERSION}: not built (no Go module proxy?); the local cluster uses "
            "chaosrec's simulated kubelets instead"
        )
    else:
        _print(f"kwok {versions['kwok']}: {binaries.kwok}")


# -- cluster ----------------------------------------------------------------------------


def cmd_cluster(args: argparse.Namespace) -> int:
    """``chaosrec cluster up|serve|down|status`` (chaosrec.adapters.kubernetes.supervisor)."""
    from chaosrec.adapters.kubernetes import supervisor as sup

    if args.cluster_command == "serve":
        from chaosrec.adapters.tools.kubernetes import find_binaries

        binaries = find_binaries()
        if binaries is None:
            _print("chaosrec: the Kubernetes binaries are missing; run `chaosrec setup`")
            return 1
        return sup.serve(binaries, args.name, nodes=args.nodes)
    if args.cluster_command == "up":
        from chaosrec.adapters.tools.kubernetes import ensure_kubernetes

        ensure_kubernetes()  # build or install here, where its output and errors are seen
        started = time.monotonic()
        state = sup.start_detached(args.name, nodes=args.nodes, timeout_s=args.timeout)
        _print(f"cluster {args.name!r} ready in {time.monotonic() - started:.1f} s")
        _print(f"kubeconfig: {state['kubeconfig']}")
        _print(f"try: kubectl --kubeconfig {state['kubeconfig']} get nodes")
        return 0
    if args.cluster_command == "down":
        stopped = sup.stop(args.name)
        _print(f"cluster {args.name!r} " + ("stopped" if stopped else "is not running"))
        return 0
    current = sup.read_state(args.name)
    if current is None or sup.supervisor(current) is None:
        _print(f"cluster {args.name!r} is not running (start it with `chaosrec cluster up`)")
        return 3
    if args.json:
        _print(json.dumps(current, indent=2))
        return 0
    _print(f"cluster {args.name!r} {current['status']}: {state.get('server')}  kubelets: "
           f"{current.get('kubelets')}  kubeconfig: {current.get('kubeconfig')}")  # fmt: skip
    _print(f"{'process':28}{'pid':>8}  {'alive':6}{'RSS MiB':>9}")
    for p in current.get("processes", []):
        rss = "-" if p.get("rss_mib") is None else f"{p['rss_mib']:.0f}"
        alive = "yes" if p.get("alive") else "NO"
        _print(f"{p['name']:28}{p['pid']!s:>8}  {alive:6}{rss:>9}")
    return 0


# -- model ------------------------------------------------------------------------------


def cmd_model(args: argparse.Namespace) -> int:
    from chaosrec.model import ensure_model, export_triton_repository

    artifact = (
        ensure_model(args.variant, force=True)
        if args.action == "train" and args.force
        else ensure_model(args.variant)
    )
    if args.action in ("train", "eval"):
        metrics = artifact.meta.get("metrics", {})
        _print(f"model {args.variant} version {artifact.version} at {artifact.path}")
        _print(f"{'':12}{'recall@10':>10}{'ndcg@10':>10}{'precision@10':>14}")
        for name in ("model", "popularity"):
            row = metrics.get(name, {})
            _print(
                f"{name:12}{row.get('recall@10', 0):>10.4f}{row.get('ndcg@10', 0):>10.4f}"
                f"{row.get('precision@10', 0):>14.4f}"
            )
        return 0
    out = export_triton_repository(artifact, Path(args.out))
    _print(f"Triton model repository written to {out}")
    return 0


# -- stack ------------------------------------------------------------------------------


def _stack_dir(name: str) -> Path:
    """The stack's state folder; the name is checked first (ConfigError, nothing created)."""
    from chaosrec.stack.stack import stack_state_dir

    return stack_state_dir(name, "--name")


def _read_state(name: str) -> dict[str, Any] | None:
    path = _stack_dir(name) / "state.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _supervisor(state: dict[str, Any] | None) -> ProcessIdentity | None:
    """The stack's supervisor named by ``state.json``, if that process is still it:
    same pid, same start time, still running ``chaosrec ... stack serve --name NAME``.
    A stale file (the supervisor died, its pid now belongs to someone else) gives None,
    so nothing is ever signalled on its word alone."""
    if not state:
        return None
    identity = ProcessIdentity.from_dict(state.get("supervisor") or {})
    if identity is None:
        return None
    name = str(state.get("name", ""))
    if not identity.is_running_command("chaosrec", "stack", "serve", f"--name {name}"):
        return None
    return identity


def cmd_stack_serve(args: argparse.Namespace) -> int:
    """Run the stack in the foreground, keeping ``state.json`` current, until a signal."""
    from chaosrec.stack.stack import EmbeddedStack

    sdir = _stack_dir(args.name)
    sdir.mkdir(parents=True, exist_ok=True)
    state_path = sdir / "state.json"
    stop = {"flag": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack = EmbeddedStack(args.topology, restart_crashed=not args.no_restart)
    me = ProcessIdentity.current().to_dict()
    who = {"supervisor_pid": os.getpid(), "supervisor": me, "name": args.name}
    try:
        stack.start()
    except ChaosrecError as err:
        failed = {
            "status": "failed",
            "error": str(err),
            "supervisor_pid": os.getpid(),
            "supervisor": me,
            "name": args.name,
            "notes": getattr(err, "__notes__", []),
        }
        state_path.write_text(json.dumps(redact(failed)), encoding="utf-8")
        print(redact(f"chaosrec: {err}"), file=sys.stderr)
        return 1
    try:
        while not stop["flag"]:
            stack.write_state(state_path, status="ready", **who)
            time.sleep(0.5)
    finally:
        stack.write_state(state_path, status="stopping", **who)
        stack.stop()
        stack.write_state(state_path, status="stopped", **who)
    return 0


def cmd_stack_up(args: argparse.Namespace) -> int:
    sdir = _stack_dir(args.name)  # checks the name before anything is created
    state = _read_state(args.name)
    if state and state.get("status") == "ready" and _supervisor(state) is not None:
        _print(f"stack {args.name!r} is already up")
        _print_status(state)
        return 0
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "state.json").unlink(missing_ok=True)
    started = time.monotonic()
    cmd = [
        sys.executable,
        "-m",
        "chaosrec",
        "stack",
        "serve",
        "--name",
        args.name,
        "--topology",
        str(args.topology),
    ]
    if args.no_restart:
        cmd.append("--no-restart")
    # detached: it outlives this command; `chaosrec stack down` stops it
    supervisor = ManagedProcess(
        f"stack {args.name!r} supervisor", cmd, log_path=sdir / "serve.log", detached=True
    ).start()
    deadline = started + args.timeout
    while time.monotonic() < deadline:
        state = _read_state(args.name)
        if state and state.get("status") == "ready":
            _print(f"stack {args.name!r} ready in {time.monotonic() - started:.1f} s")
            _print_status(state)
            return 0
        if state and state.get("status") == "failed":
            error = redact(f"chaosrec: stack failed to start: {state.get('error')}")
            print(error, file=sys.stderr)
            for note in state.get("notes", []):
                print(redact(str(note)), file=sys.stderr)
            supervisor.wait(10)
            return 1
        if not supervisor.alive:
            print(
                f"chaosrec: the stack supervisor exited with code {supervisor.returncode}; "
                f"see {sdir / 'serve.log'}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    supervisor.stop(grace_s=30)
    print(
        f"chaosrec: the stack was not ready after {args.timeout:.0f} s; see {sdir / 'serve.log'}",
        file=sys.stderr,
    )
    return 1


def cmd_stack_down(args: argparse.Namespace) -> int:
    state = _read_state(args.name)
    supervisor = _supervisor(state)
    if supervisor is None:
        stale = state.get("supervisor_pid") if state else None
        why = f" (stale state file: pid {stale} is not its supervisor)" if stale else ""
        _print(f"stack {args.name!r} is not running{why}")
        return 0
    os.kill(supervisor.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while supervisor.is_running() and time.monotonic() < deadline:
        time.sleep(0.1)
        with contextlib.suppress(ChildProcessError):  # reap it if it is our child
            os.waitpid(supervisor.pid, os.WNOHANG)
    if supervisor.is_running():
        os.kill(supervisor.pid, signal.SIGKILL)
    _print(f"stack {args.name!r} stopped")
    return 0


def cmd_stack_status(args: argparse.Namespace) -> int:
    state = _read_state(args.name)
    if state is None or _supervisor(state) is None:
        _print(f"stack {args.name!r} is not running (start it with `chaosrec stack up`)")
        return 3
    if args.json:
        _print(json.dumps(redact(state), indent=2))
    else:
        _print_status(state)
    return 0


def _print_status(state: dict[str, Any]) -> None:
    state = redact(state)
    versions = state.get("versions", {})
    _print(
        f"topology {state['topology']['name']}  triton {versions.get('triton', '?')}  "
        f"toxiproxy {versions.get('toxiproxy', '?')}  model {versions.get('model', '?')}"
    )
    _print(f"{'process':22}{'pid':>8}  {'alive':6}{'port':>7}  endpoint")
    gw = state["gateway"]
    _print(
        f"{'gateway':22}{gw['pid']!s:>8}  {'yes' if gw['alive'] else 'NO':6}{gw['port']:>7}  "
        f"{gw['url']}"
    )
    tp = state["toxiproxy"]
    tport = tp["api_url"].rsplit(":", 1)[-1] if tp.get("api_url") else "-"
    _print(f"{'toxiproxy':22}{tp['pid']!s:>8}  {'yes':6}{tport:>7}  {tp['api_url']}")
    for r in state["replicas"]:
        _print(
            f"{'triton ' + r['replica']:22}{r['pid']!s:>8}  {'yes' if r['alive'] else 'NO':6}"
            f"{r['http_port']:>7}  grpc {r['grpc_port']}, metrics {r['metrics_port']}, "
            f"via proxy {r['proxy']}"
        )
    if state.get("startup_s") is not None:
        _print(f"started in {state['startup_s']} s; logs in {state['run_dir']}")


# -- report -----------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """Build the HTML drill report from Allure results (see chaosrec.reporting.build)."""
    from chaosrec.reporting.build import build_report

    built = build_report(
        Path(args.results),
        Path(args.out),
        history=Path(args.history) if args.history else None,
    )
    _print(
        f"HTML report: {built.index} (Allure {built.allure_version}, one file that opens "
        f"from disk; built in {built.seconds:.1f} s)"
    )
    for summary in (built.summary_html, built.summary_md):
        if summary is not None:
            _print(f"drill summary: {summary}")
    if built.score_file is not None:
        shown = "-" if built.score is None else f"{built.score:.1f}"
        _print(f"resilience score: {shown}/100 ({built.score_file})")
    if args.screenshots:
        from chaosrec.reporting.browser import check_report

        names = [str(p["name"]) for p in _report_tests(built.index)]
        check = check_report(built.index, Path(args.screenshots), drills=names)
        _print(f"screenshots: {check.overview_png}, {check.drill_png} ({check.drill})")
        for problem in check.problems:
            print(f"chaosrec: report check: {problem}", file=sys.stderr)
        return 1 if check.problems else 0
    return 0


def _report_tests(index: Path) -> list[dict[str, Any]]:
    data = json.loads((index.parent / "test-results.json").read_text(encoding="utf-8"))
    failed_first = sorted(data.get("byId", {}).values(), key=lambda t: t.get("status") == "passed")
    return failed_first


# -- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosrec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup", help="install Toxiproxy, prepare Triton, train the model")
    p.add_argument("--skip-model", action="store_true", help="do not train the model")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("model", help="train, evaluate or export the reference recommender")
    p.add_argument("action", choices=["train", "eval", "export"])
    p.add_argument("--variant", choices=["good", "bad"], default="good")
    p.add_argument("--force", action="store_true", help="retrain even if cached")
    p.add_argument("--out", default="triton-model-repository", help="export folder")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("report", help="build the HTML drill report from Allure results")
    p.add_argument(
        "results", nargs="?", default="reports/allure-results", help="Allure results folder"
    )
    p.add_argument(
        "--out",
        default="reports/allure-report",
        help="report folder: created, or replaced if an earlier `chaosrec report` built it",
    )
    p.add_argument("--history", default=None, help="Allure 3 history file (JSON lines)")
    p.add_argument(
        "--screenshots", default=None, help="render in headless chromium, screenshots here"
    )
    p.set_defaults(func=cmd_report)

    from chaosrec.reporting.history_cli import add_history_parser

    add_history_parser(sub)

    cluster = sub.add_parser("cluster", help="a local Kubernetes control plane on loopback")
    csub = cluster.add_subparsers(dest="cluster_command", required=True)
    for name, text in (
        ("up", "start it in the background, wait until ready, print its kubeconfig"),
        ("serve", "run it in the foreground (Ctrl-C stops it)"),
        ("down", "stop a cluster started with `up`; no process is left"),
        ("status", "show its processes and their memory"),
    ):
        cp = csub.add_parser(name, help=text)
        cp.add_argument("--name", default="default", help="cluster name (default: default)")
        if name in ("up", "serve"):
            cp.add_argument("--nodes", type=int, default=3, help="kwok nodes (default: 3)")
        if name == "up":
            cp.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")
        if name == "status":
            cp.add_argument("--json", action="store_true", help="print the state as JSON")
        cp.set_defaults(func=cmd_cluster)

    stack = sub.add_parser("stack", help="the embedded reference stack")
    ssub = stack.add_subparsers(dest="stack_command", required=True)
    for name, func, text in (
        ("up", cmd_stack_up, "start the stack in the background and wait until ready"),
        ("serve", cmd_stack_serve, "run the stack in the foreground"),
        ("down", cmd_stack_down, "stop a stack started with `up`"),
        ("status", cmd_stack_status, "show every process, its port and versions"),
    ):
        sp = ssub.add_parser(name, help=text)
        sp.add_argument("--name", default="default", help="stack name (default: default)")
        if name in ("up", "serve"):
            sp.add_argument(
                "--topology", default="default", help="built-in name (default, quick) or YAML file"
            )
            sp.add_argument(
                "--no-restart", action="store_true", help="do not restart crashed replicas"
            )
        if name == "up":
            sp.add_argument("--timeout", type=float, default=180.0, help="seconds to wait")
        if name == "status":
            sp.add_argument("--json", action="store_true", help="print the state as JSON")
        sp.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ChaosrecError as err:
        print(redact(f"chaosrec: {err}"), file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())

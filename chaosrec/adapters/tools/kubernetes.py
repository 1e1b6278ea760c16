"""The binaries of chaosrec's local Kubernetes control plane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok, found or installed from the registries.

* **etcd**: Debian's ``etcd-server`` (3.4), ``apt-get install`` when running as root;
  ``$ETCD_BIN`` or an ``etcd`` on ``PATH`` otherwise. No service is started: chaosrec
  runs ``etcd`` itself, on loopback.
* **kube-apiserver, kube-controller-manager, kube-scheduler** v:data:`KUBERNETES_VERSION`,
  built from source through the Go module proxy: a throwaway Go module requires
  ``k8s.io/kubernetes`` at that version and replaces every staging module its own
  ``go.mod`` points at ``./staging/src/...`` by the matching ``v0.x`` release, then
  ``go build`` of the three ``cmd/`` packages (with the version stamped in, else they
  call themselves v0.0.0). Measured: 6-7 min on 2 busy cores the first time (~2.5 GB
  of Go build cache), seconds with a warm cache. Installed as
  ``<tools>/kubernetes-v<version>/`` by an atomic rename. ``$KUBE_APISERVER_BIN``,
  ``$KUBE_CONTROLLER_MANAGER_BIN`` and ``$KUBE_SCHEDULER_BIN`` override each.
* **kwok** v:data:`KWOK_VERSION` (``go install sigs.k8s.io/kwok/cmd/kwok``), which plays
  the kubelets: nodes and pod lifecycle, no containers. ``$KWOK_BIN`` overrides it.

Example::

    binaries = ensure_kubernetes()            # found, else installed / built
    print(binaries.versions())                # {"etcd": "3.4.23", "kube-apiserver": ...}
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from chaosrec.adapters.tools._run import (
    executable,
    first_line,
    from_env,
    run_tool,
    tool_output,
)
from chaosrec.core.paths import tools_dir
from chaosrec.errors import SetupError, ToolNotFoundError

__all__ = [
    "CONTROL_PLANE",
    "KUBERNETES_VERSION",
    "KWOK_VERSION",
    "KubernetesBinaries",
    "ensure_kubernetes",
    "find_binaries",
    "find_etcd",
    "find_kubernetes",
    "find_kwok",
    "install_etcd",
    "install_kube_control_plane",
    "install_kwok",
    "staging_replacements",
]

logger = logging.getLogger(__name__)

#: The Kubernetes release chaosrec builds its control plane from, and is tested against.
KUBERNETES_VERSION = "1.31.4"
#: The kwok release that plays the kubelets.
KWOK_VERSION = "0.6.1"
#: The control-plane commands built from ``k8s.io/kubernetes/cmd/<name>``.
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")

_KWOK_PACKAGE = "sigs.k8s.io/kwok/cmd/kwok"
_ENV = {name: name.upper().replace("-", "_") + "_BIN" for name in (*CONTROL_PLANE, "kwok", "etcd")}
_REPLACE_LINE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/\S+\s*$")
_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)")
_GO_BUILD_S = 2400.0
# a kwok build that failed (no module proxy) is not retried for this long: each try
# spends a minute on network time-outs
_RETRY_FAILED_S = 3600.0  # the first build is minutes of CPU; on shared cores it can take 20


@dataclass(frozen=True)
class KubernetesBinaries:
    """Paths of the five programs a local control plane runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path | None  # None: no kwok could be had; the cluster simulates the kubelets

    def versions(self) -> dict[str, str]:
        """Each program's version as it reports it (``"?"`` when it cannot tell)."""
        probes: dict[str, tuple[Path | None, list[str]]] = {
            "etcd": (self.etcd, ["--version"]),
            "kube-apiserver": (self.kube_apiserver, ["--version"]),
            "kube-controller-manager": (self.kube_controller_manager, ["--version"]),
            "kube-scheduler": (self.kube_scheduler, ["--version"]),
            "kwok": (self.kwok, ["--version"]),
        }
        out: dict[str, str] = {}
        for name, (binary, args) in probes.items():
            if binary is None:
                out[name] = "not installed"
                continue
            try:
                match = _VERSION.search(tool_output(binary, args, timeout_s=30))
            except SetupError:
                match = None
            out[name] = match.group(1) if match else "?"
        return out


# -- etcd (Debian) ------------------------------------------------------------------------


def find_etcd() -> Path | None:
    """``$ETCD_BIN``, else ``etcd`` on ``PATH`` (Debian installs ``/usr/bin/etcd``).

    Raises:
        ToolNotFoundError: ``$ETCD_BIN`` is set but is not an executable file.
    """
    explicit = from_env("ETCD_BIN", "an etcd binary")
    if explicit is not None:
        return explicit
    on_path = shutil.which("etcd")
    return Path(on_path) if on_path else None


def install_etcd(timeout_s: float = 900.0) -> Path:
    """Return an etcd binary, installing Debian's ``etcd-server`` with apt-get if needed
    (the package starts no service here: chaosrec runs etcd itself).

    Raises:
        ToolNotFoundError: none found and this is not a root shell with apt-get.
        SetupError: apt-get failed; its output tail is noted.
    """
    found = find_etcd()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ToolNotFoundError(
            "no etcd found (ETCD_BIN unset, none on PATH) and chaosrec can install it only "
            "as root with apt-get; run `sudo apt-get install -y etcd-server` or set ETCD_BIN"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    fix = "check access to Debian's package mirrors, or install etcd-server yourself"
    run_tool([apt, "update"], env=env, timeout_s=timeout_s, fix=fix)
    run_tool(
        [apt, "install", "-y", "--no-install-recommends", "etcd-server"],
        env=env,
        timeout_s=timeout_s,
        fix=fix,
    )
    found = find_etcd()
    if found is None:
        raise SetupError("apt-get installed etcd-server but no etcd is on PATH; check PATH")
    return found


# -- kube-apiserver, kube-controller-manager, kube-scheduler (Go module proxy) -------------


def _control_plane_dir(version: str = KUBERNETES_VERSION) -> Path:
    return tools_dir() / f"kubernetes-v{version}"


def find_kubernetes() -> dict[str, Path] | None:
    """The three control-plane binaries: each from its ``$KUBE_..._BIN``, else chaosrec's
    pinned build, else on ``PATH``; None unless all three are found.

    Raises:
        ToolNotFoundError: a ``$KUBE_..._BIN`` is set but is not an executable file.
    """
    found: dict[str, Path] = {}
    built = _control_plane_dir()
    for name in CONTROL_PLANE:
        explicit = from_env(_ENV[name], f"a {name} binary")
        if explicit is not None:
            found[name] = explicit
        elif executable(built / name):
            found[name] = built / name
        elif shutil.which(name):
            found[name] = Path(str(shutil.which(name)))
    return found if len(found) == len(CONTROL_PLANE) else None


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolNotFoundError(
            "no Go toolchain to build the Kubernetes control plane and kwok; install Go "
            "(https://go.dev/doc/install is the usual way; Debian: apt-get install golang) and "
            "run `chaosrec setup`, or set KUBE_APISERVER_BIN, KUBE_CONTROLLER_MANAGER_BIN, "
            "KUBE_SCHEDULER_BIN and KWOK_BIN"
        )
    return go


def _go_env(**extra: str) -> dict[str, str]:
    # -mod=mod: the throwaway module's go.sum is written by this build; GOWORK=off: a
    # go.work around the tools folder must not capture it; CGO off: static binaries, as
    # Kubernetes releases them, and no C compiler needed.
    flags = os.environ.get("GOFLAGS", "")
    flags = " ".join(f for f in flags.split() if not f.startswith("-mod="))
    return {
        **os.environ,
        "GOFLAGS": f"{flags} -mod=mod".strip(),
        "GOWORK": "off",
        "CGO_ENABLED": "0",
        **extra,
    }


def staging_replacements(go_mod: str, version: str = KUBERNETES_VERSION) -> list[str]:
    """The staging modules of a ``k8s.io/kubernetes`` ``go.mod`` (its ``replace`` lines
    pointing at ``./staging/src/...``), each replaced by its ``v0.<minor>.<patch>``
    release: ``k8s.io/api => k8s.io/api v0.31.4``.

    Raises:
        SetupError: the text has no such replace line (not a Kubernetes go.mod).
    """
    major, minor, patch = version.split(".")
    if major != "1":
        raise SetupError(f"Kubernetes version {version!r}: only 1.x releases are supported")
    release = f"v0.{minor}.{patch}"
    modules = [m.group(1) for line in go_mod.splitlines() if (m := _REPLACE_LINE.match(line))]
    if not modules:
        raise SetupError(
            "k8s.io/kubernetes's go.mod has no `k8s.io/... => ./staging/src/...` replace "
            "lines; chaosrec cannot tell which staging modules to pin"
        )
    return [f"{module} => {module} {release}" for module in modules]


def _kubernetes_go_mod(go: str, scratch: Path, timeout_s: float) -> str:
    """The text of ``k8s.io/kubernetes``'s own go.mod, from the Go module proxy."""
    import json

    output = run_tool(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"],
        env=_go_env(),
        cwd=scratch,
        timeout_s=timeout_s,
        fix="check access to the Go module proxy (GOPROXY)",
    )
    try:
        info = json.loads(output)
        return Path(info["GoMod"]).read_text(encoding="utf-8")
    except (ValueError, KeyError, OSError) as err:
        raise SetupError(
            f"`go mod download k8s.io/kubernetes@v{KUBERNETES_VERSION}` gave no go.mod "
            f"({first_line(output)!r}); check GOPROXY and GOFLAGS"
        ) from err


def install_kube_control_plane(
    force: bool = False, timeout_s: float = _GO_BUILD_S
) -> dict[str, Path]:
    """Return the three control-plane binaries, building them if any is missing.

    The build runs in a scratch folder inside the tools folder, which is then renamed to
    ``kubernetes-v<version>`` (atomic: a half-built set is never picked up, and two
    processes building at once both end with a complete one).

    Raises:
        ToolNotFoundError: not found and no ``go`` on ``PATH``.
        SetupError: the module download or the build failed; the output tail is noted.
    """
    if not force:
        found = find_kubernetes()
        if found is not None:
            return found
    go = _go()
    target = _control_plane_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".kube-build-", dir=target.parent))
    try:
        (scratch / "go.mod").write_text("module chaosrec.local/kubebuild\n", encoding="utf-8")
        replacements = staging_replacements(_kubernetes_go_mod(go, scratch, timeout_s))
        (scratch / "go.mod").write_text(
            "// Generated by chaosrec to build the Kubernetes control plane; throwaway.\n"
            "module chaosrec.local/kubebuild\n\ngo 1.22.0\n\n"
            f"require k8s.io/kubernetes v{KUBERNETES_VERSION}\n\n"
            "replace (\n" + "".join(f"\t{r}\n" for r in replacements) + ")\n",
            encoding="utf-8",
        )
        minor = KUBERNETES_VERSION.split(".")[1]
        stamp = "k8s.io/component-base/version"
        ldflags = (
            f"-s -w -X {stamp}.gitVersion=v{KUBERNETES_VERSION} -X {stamp}.gitMajor=1 "
            f"-X {stamp}.gitMinor={minor} -X {stamp}.gitTreeState=clean"
        )
        out = scratch / "bin"
        out.mkdir()
        logger.info("building Kubernetes v%s control plane with go build", KUBERNETES_VERSION)
        run_tool(
            [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                ldflags,
                "-o",
                f"{out}{os.sep}",
                *(f"k8s.io/kubernetes/cmd/{name}" for name in CONTROL_PLANE),
            ],
            env=_go_env(),
            cwd=scratch,
            timeout_s=timeout_s,
            fix="check access to the Go module proxy (GOPROXY) and free disk space (the "
            "build cache needs ~2.5 GB), or set KUBE_APISERVER_BIN, "
            "KUBE_CONTROLLER_MANAGER_BIN and KUBE_SCHEDULER_BIN",
        )
        for name in CONTROL_PLANE:
            if not executable(out / name):
                raise SetupError(f"`go build` left no {name} in {out}; check GOOS/GOARCH")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("installed %s", target)
    found = find_kubernetes()
    assert found is not None  # built just now
    return found


# -- kwok ---------------------------------------------------------------------------------


def _kwok_path(version: str = KWOK_VERSION) -> Path:
    return tools_dir() / f"kwok-v{version}"


def find_kwok() -> Path | None:
    """``$KWOK_BIN``, else chaosrec's pinned build, else ``kwok`` on ``PATH``.

    Raises:
        ToolNotFoundError: ``$KWOK_BIN`` is set but is not an executable file.
    """
    explicit = from_env("KWOK_BIN", "a kwok binary")
    if explicit is not None:
        return explicit
    if executable(_kwok_path()):
        return _kwok_path()
    on_path = shutil.which("kwok")
    return Path(on_path) if on_path else None


def install_kwok(force: bool = False, timeout_s: float = 1200.0) -> Path:
    """Return a kwok binary, building v:data:`KWOK_VERSION` with ``go install`` if needed
    (about 45 s with a warm module cache), renamed atomically into the tools folder.

    Raises:
        ToolNotFoundError: not found and no ``go`` on ``PATH``.
        SetupError: ``go install`` failed; its output tail is noted.
    """
    if not force:
        found = find_kwok()
        if found is not None:
            return found
    go = _go()
    target = _kwok_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".go-install-", dir=target.parent))
    package = f"{_KWOK_PACKAGE}@v{KWOK_VERSION}"
    try:
        logger.info("building kwok v%s with `go install %s`", KWOK_VERSION, package)
        run_tool(
            [go, "install", "-trimpath", package],
            env=_go_env(GOBIN=str(scratch)),
            timeout_s=timeout_s,
            fix="check access to the Go module proxy (GOPROXY), or set KWOK_BIN",
        )
        built = scratch / "kwok"
        if not built.is_file():
            raise SetupError(f"`go install {package}` left no kwok in GOBIN={scratch}")
        built.chmod(0o755)
        os.replace(built, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def ensure_kubernetes(*, require_kwok: bool = False) -> KubernetesBinaries:
    """Every binary of the local control plane: found, else installed or built.

    When kwok can be neither found nor built (no Go module proxy), ``kwok`` is None and
    a warning says so: the local cluster then runs chaosrec's simulated kubelets
    (:mod:`chaosrec.adapters.kubernetes.kubelets`) in its place, unless ``require_kwok``.

    Raises:
        ToolNotFoundError: one is missing and cannot be installed here (the message
            says what to install or which ``$..._BIN`` to set).
        SetupError: an install or build failed.
    """
    etcd = install_etcd()
    control_plane = install_kube_control_plane()
    kwok: Path | None = find_kwok()
    failed = tools_dir() / f".kwok-v{KWOK_VERSION}.failed"
    recent = failed.exists() and time.time() - failed.stat().st_mtime < _RETRY_FAILED_S
    if kwok is None and (require_kwok or not recent):
        try:
            kwok = install_kwok()
            failed.unlink(missing_ok=True)
        except SetupError as err:
            if require_kwok:
                raise
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.write_text(str(err), encoding="utf-8")
            logger.warning("kwok unavailable, the local cluster simulates its kubelets: %s", err)
    if kwok is None:
        logger.warning("no kwok (last build failed less than an hour ago): simulated kubelets")
    return KubernetesBinaries(
        etcd=etcd,
        kube_apiserver=control_plane["kube-apiserver"],
        kube_controller_manager=control_plane["kube-controller-manager"],
        kube_scheduler=control_plane["kube-scheduler"],
        kwok=kwok,
    )


def find_binaries() -> KubernetesBinaries | None:
    """Every binary if all are already there (nothing is installed), else None."""
    etcd, control_plane, kwok = find_etcd(), find_kubernetes(), find_kwok()
    if etcd is None or control_plane is None:
        return None
    return KubernetesBinaries(
        etcd=etcd,
        kube_apiserver=control_plane["kube-apiserver"],
        kube_controller_manager=control_plane["kube-controller-manager"],
        kube_scheduler=control_plane["kube-scheduler"],
        kwok=kwok,
    )

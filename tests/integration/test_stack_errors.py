"""Bad input to the stack: one clear line naming cause and fix, and nothing left running."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrec.adapters.ports import free_port
from chaosrec.errors import (
    ConfigError,
    ModelLoadError,
    PortInUseError,
    ToolNotFoundError,
    UnknownTargetError,
)
from chaosrec.stack.stack import EmbeddedStack
from chaosrec.stack.triton import TritonPorts, TritonReplica, find_triton, write_model_repository

pytestmark = pytest.mark.integration


def _children() -> set[int]:
    """PIDs of this process's live (non-zombie) children."""
    me = Path("/proc/self").resolve().name
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def no_leaks() -> Iterator[None]:
    before = _children()
    yield
    leaked = _children() - before
    assert not leaked, f"processes left running: {sorted(leaked)}"


def test_unknown_region_in_topology_file(tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text("home_region: region-z\nregions:\n  region-a: {replicas: 1}\n")
    with pytest.raises(UnknownTargetError, match=r"home_region='region-z' is not one of"):
        EmbeddedStack(topo)


def test_missing_toxiproxy_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    monkeypatch.setenv("TOXIPROXY_BIN", str(tmp_path / "no-such-toxiproxy"))
    stack = EmbeddedStack("quick", run_dir=tmp_path / "run")
    with pytest.raises(ToolNotFoundError, match="TOXIPROXY_BIN") as info:
        stack.start()
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run").exists(), "nothing should start before the check"


def test_gateway_port_in_use(tmp_path: Path, no_leaks: None) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        stack = EmbeddedStack("quick", run_dir=tmp_path / "run", gateway_port=port)
        with pytest.raises(PortInUseError, match=rf"gateway_port={port} is already in use"):
            stack.start()


@pytest.mark.parametrize("port", [0, 70000, "8080", True], ids=["zero", "too-big", "str", "bool"])
def test_invalid_gateway_port(port: object) -> None:
    with pytest.raises(ConfigError, match=r"gateway_port=.* must be an integer in \[1, 65535\]"):
        EmbeddedStack("quick", gateway_port=port)  # type: ignore[arg-type]


def test_model_that_fails_to_load(tmp_path: Path, no_leaks: None) -> None:
    broken = tmp_path / "model.pt"
    broken.write_bytes(b"this is not a TorchScript archive")
    repo = write_model_repository(
        tmp_path / "models", broken, fault_file=tmp_path / "fault.json", use_gpu=False
    ).parent
    replica = TritonReplica(
        "region-a.r0",
        dist=find_triton(),
        repo_dir=repo,
        work_dir=tmp_path / "work",
        ports=TritonPorts(free_port(), free_port(), free_port()),
    )
    replica.start()
    with pytest.raises(ModelLoadError, match=r"region-a.r0: Triton could not load model 'recsys'"):
        replica.wait_ready()
    assert not replica.process.alive


def test_reaper_kills_an_orphaned_stub_copy(tmp_path: Path) -> None:
    """An orphan (parent = init) running chaosrec's backend stub is killed; others are not."""
    import subprocess
    import sys
    import time

    from chaosrec.stack.reaper import reap_orphans

    backend = tmp_path / "backend" / "python"
    backend.mkdir(parents=True)
    stub = backend / "triton_python_backend_stub"
    stub.symlink_to("/bin/sleep")
    # a double fork leaves the stub's stand-in orphaned, as a killed Triton would
    launcher = subprocess.run(
        [
            sys.executable,
            "-c",
            "import subprocess; "
            f"print(subprocess.Popen(['{stub}', '60'], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL).pid)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(launcher.stdout)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] != "1":
        assert time.monotonic() < deadline, "the stand-in was not re-parented to init"
        time.sleep(0.01)
    assert reap_orphans(tmp_path / "backend") == [pid]
    assert reap_orphans(tmp_path / "backend") == []

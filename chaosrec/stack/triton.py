"""Triton Inference Server replicas, run from the ``tritonserver`` bundled in ``nvidia-pytriton``.

We drive the raw server, not PyTriton's ``Triton()`` wrapper: the wrapper is
2-3.6x slower here and breaks when its model is unloaded and reloaded through
Triton's model-control API, which our drills rely on.

Two things the bundled server needs that this module arranges:

* the Python-backend stub must sit next to ``libtriton_python.so``; we assemble a
  backend directory in chaosrec's tools folder from the wheel's files;
* the stub links ``libpython3.X.so``, so ``LD_LIBRARY_PATH`` must hold the running
  interpreter's ``LIBDIR`` (a pyenv interpreter otherwise picks up the system
  one and fails to load the model), and ``PATH`` must start with this
  interpreter's ``bin`` so the stub finds the same site-packages (torch, numpy).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrec.adapters.process.manager import ManagedProcess
from chaosrec.adapters.triton import TritonModelControl
from chaosrec.core.paths import cache_dir
from chaosrec.errors import ModelLoadError, ProcessStartError, SetupError, ToolNotFoundError

__all__ = [
    "MODEL_NAME",
    "TOP_K",
    "TritonDist",
    "TritonPorts",
    "TritonReplica",
    "find_triton",
    "write_model_repository",
]

MODEL_NAME = "recsys"
TOP_K = 50
_MODEL_PY = Path(__file__).with_name("triton_model") / "model.py"


@dataclass(frozen=True)
class TritonDist:
    """Where the bundled Triton server, its libraries and our backend directory are."""

    server: Path
    libs: Path
    backend_dir: Path
    version: str

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for ``tritonserver`` so its Python backend uses this interpreter."""
        env = dict(os.environ if base is None else base)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        paths = [str(self.libs), libdir, env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = ":".join(p for p in paths if p)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        env.pop("PYTHONHOME", None)
        return env


def find_triton() -> TritonDist:
    """Locate the ``tritonserver`` from nvidia-pytriton and prepare its Python backend.

    Raises :class:`ToolNotFoundError` if nvidia-pytriton is not installed, and
    :class:`SetupError` if this interpreter cannot host the Python backend.
    """
    try:
        import pytriton
    except ImportError as err:
        raise ToolNotFoundError(
            "tritonserver not found: nvidia-pytriton is not installed; run `make setup` "
            "or `pip install chaosrec` (it depends on nvidia-pytriton)"
        ) from err
    from importlib.metadata import version

    root = Path(pytriton.__file__).parent
    server = root / "tritonserver" / "bin" / "tritonserver"
    libs = root.parent / "nvidia_pytriton.libs"
    if not libs.is_dir():  # editable installs keep them inside the package
        libs = root / "tritonserver" / "external_libs"
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = root / "tritonserver" / "python_backend_stubs" / py / "triton_python_backend_stub"
    if not server.is_file():
        raise ToolNotFoundError(
            f"tritonserver not found at {server}; "
            "reinstall nvidia-pytriton (pip install -U nvidia-pytriton)"
        )
    if not stub.is_file():
        raise SetupError(
            f"nvidia-pytriton has no Python-backend stub for Python {py}; use Python 3.8-3.13"
        )
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise SetupError(
            f"{sys.executable} was built without a shared libpython, which Triton's Python "
            "backend needs; use a Python built with --enable-shared (e.g. "
            "PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3.11)"
        )
    pytriton_version = version("nvidia-pytriton")
    backend_dir = cache_dir() / "tools" / f"triton-backends-{pytriton_version}-py{py}"
    python_dir = backend_dir / "python"
    if not (python_dir / "triton_python_backend_stub").is_file():
        tmp = backend_dir.with_name(f"{backend_dir.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "python").mkdir(parents=True)
        for item in (root / "tritonserver" / "backends" / "python").iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / "python" / item.name)
        shutil.copy2(stub, tmp / "python" / "triton_python_backend_stub")
        try:
            tmp.rename(backend_dir)
        except OSError:  # another process won the race; theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return TritonDist(server=server, libs=libs, backend_dir=backend_dir, version=pytriton_version)


def write_model_repository(
    repo_dir: Path,
    model_file: Path,
    *,
    fault_file: Path,
    model_name: str = MODEL_NAME,
    max_batch_size: int = 64,
    use_gpu: bool | None = None,
    extra_versions: dict[int, Path] | None = None,
) -> Path:
    """Write a Python-backend Triton model repository serving ``model_file`` as version 1.

    ``extra_versions`` adds more versions (e.g. ``{2: bad_model_file}``) that are
    present on disk but not served until a drill loads them through model control.
    Returns the model's folder.
    """
    if use_gpu is None:
        import torch

        use_gpu = bool(torch.cuda.is_available())
    model_dir = repo_dir / model_name
    versions = {1: model_file, **(extra_versions or {})}
    for number, source in versions.items():
        vdir = model_dir / str(number)
        vdir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_MODEL_PY, vdir / "model.py")
        target = vdir / "model.pt"
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(source.resolve())
    kind = "KIND_GPU" if use_gpu else "KIND_CPU"
    (model_dir / "config.pbtxt").write_text(
        _CONFIG_TEMPLATE.format(
            name=model_name,
            max_batch_size=max_batch_size,
            top_k=TOP_K,
            kind=kind,
            fault_file=fault_file,
        ),
        encoding="utf-8",
    )
    return model_dir


_CONFIG_TEMPLATE = """\
name: "{name}"
backend: "python"
max_batch_size: {max_batch_size}
version_policy: {{ specific: {{ versions: [1] }} }}
input [ {{ name: "USER_ID" data_type: TYPE_INT64 dims: [ 1 ] }} ]
output [
  {{ name: "ITEM_IDS" data_type: TYPE_INT64 dims: [ {top_k} ] }},
  {{ name: "SCORES" data_type: TYPE_FP32 dims: [ {top_k} ] }}
]
dynamic_batching {{ max_queue_delay_microseconds: 100 }}
instance_group [ {{ kind: {kind} count: 1 }} ]
parameters: {{ key: "FAULT_FILE" value: {{ string_value: "{fault_file}" }} }}
parameters: {{ key: "TORCH_THREADS" value: {{ string_value: "1" }} }}
"""


@dataclass(frozen=True)
class TritonPorts:
    http: int
    grpc: int
    metrics: int


class TritonReplica:
    """One ``tritonserver`` process serving one model repository on 127.0.0.1.

    The model is loaded explicitly (``--model-control-mode=explicit``) so drills
    can unload and reload it through Triton's own model-control API.
    """

    def __init__(
        self,
        replica_id: str,
        *,
        dist: TritonDist,
        repo_dir: Path,
        work_dir: Path,
        ports: TritonPorts,
        model_name: str = MODEL_NAME,
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.replica_id = replica_id
        self.dist = dist
        self.repo_dir = repo_dir
        self.work_dir = work_dir
        self.ports = ports
        self.model_name = model_name
        tmp = work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = dist.env()
        env["TMPDIR"] = str(tmp)  # keeps the stub's scratch files in this run's folder
        shm_prefix = f"chaosrec{os.getpid()}_{replica_id.replace('.', '_').replace('-', '_')}_"
        argv = [
            str(dist.server),
            f"--model-repository={repo_dir}",
            f"--backend-directory={dist.backend_dir}",
            "--model-control-mode=explicit",
            f"--load-model={model_name}",
            "--strict-readiness=true",
            # The config we write is complete. Without this flag the Python backend
            # starts a throwaway stub (which imports torch) just to ask the model to
            # complete its config: measured 4 of the 7 CPU-seconds of a replica start.
            "--disable-auto-complete-config",
            "--exit-on-error=true",
            "--http-address=127.0.0.1",
            f"--http-port={ports.http}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={ports.grpc}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={ports.metrics}",
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=5",
            f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
            "--log-verbose=0",
        ]
        self.process = ManagedProcess(
            f"triton[{replica_id}]",
            argv,
            log_path=work_dir / "triton.log",
            ready_check=self.model_ready,
            env=env,
            ready_timeout_s=ready_timeout_s,
        )

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def control(self) -> TritonModelControl:
        """Model control and readiness of this replica's model."""
        return TritonModelControl(
            self.http_url,
            self.model_name,
            model_dir=self.repo_dir / self.model_name,
            label=self.replica_id,
        )

    def model_ready(self) -> bool:
        """Per-model readiness: ``/v2/health/ready`` stays 200 while a model is unloaded."""
        return self.control.ready()

    def start(self) -> None:
        self.process.start()

    def wait_ready(self) -> float:
        """Wait for the model to be ready; a load failure raises :class:`ModelLoadError`."""
        try:
            return self.process.wait_ready()
        except ProcessStartError as err:
            tail = self.process.log_tail(200)
            if "failed to load" in tail or "UNAVAILABLE" in tail:
                reason = next(
                    (line.strip() for line in tail.splitlines() if "failed to load" in line),
                    "see the log",
                )
                new = ModelLoadError(
                    f"{self.replica_id}: Triton could not load model {self.model_name!r} "
                    f"({reason[:300]}); check the model repository {self.repo_dir}"
                )
                for note in getattr(err, "__notes__", []):
                    new.add_note(note)
                raise new from err
            raise

    def stop(self) -> None:
        self.process.stop(grace_s=8.0)

    def describe(self) -> dict[str, Any]:
        return {
            "replica": self.replica_id,
            "pid": self.process.pid,
            "identity": self.process.identity.to_dict() if self.process.identity else None,
            "alive": self.process.alive,
            "http_port": self.ports.http,
            "grpc_port": self.ports.grpc,
            "metrics_port": self.ports.metrics,
            "log": str(self.process.log_path),
        }


def write_fault(fault_file: Path, fault: dict[str, Any]) -> None:
    """Atomically replace a replica's emulated-GPU-fault file (read by the model per batch)."""
    tmp = fault_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(fault), encoding="utf-8")
    tmp.replace(fault_file)

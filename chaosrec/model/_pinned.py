"""Training in a child process whose floating-point paths are pinned, so that the
reference model's bytes are the same on every x86-64 CPU.

torch dispatches its CPU kernels by the CPU's capability (``DEFAULT``, ``AVX2``,
``AVX512``) and MKL picks its BLAS code path by CPU too; both change the last
bits of the trained weights. Measured on one machine (torch 2.15, AVX512 CPU),
the good model's version was ``2357e00d0258`` under ``ATEN_CPU_CAPABILITY=avx512``,
``13b2c54a9deb`` under ``avx2`` and ``d61d15eb0e5b`` under ``default`` (all with
``MKL_CBWR=COMPATIBLE``); with ``MKL_CBWR=AVX2`` instead it was ``1871d5b8e003``.

Both choices are read once per process, before the first kernel runs, so they
cannot be changed in a process that already uses torch: :func:`train_in_child`
starts a fresh interpreter with :data:`PINNED_ENV` (the portable baseline:
ATen's scalar-width ``default`` kernels, MKL's SSE2-only ``COMPATIBLE`` path,
oneDNN off, a fixed thread count) and trains there on the CPU. The price is
time: ~30 s instead of ~20 s for the good model on 2 cores.

What it does not pin: the torch version (another torch may change the bits;
the version is recorded in ``meta.json``) and GPUs (the reference model is
always trained on the CPU; serving uses CUDA when present).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from chaosrec.errors import ModelError

__all__ = ["PINNED_ENV", "numerics", "train_in_child"]

PINNED_ENV: Final[Mapping[str, str]] = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
}
"""Environment of the training child; threads are pinned from ``TrainConfig.num_threads``."""

_LOG_TAIL_LINES = 40


def numerics() -> dict[str, Any]:
    """The floating-point configuration of this process, as recorded in ``meta.json``."""
    import torch

    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
        "mkldnn": bool(torch.backends.mkldnn.enabled),
        "threads": torch.get_num_threads(),
    }


def train_in_child(
    staging: Path,
    *,
    variant: str,
    seed: int,
    config: Mapping[str, Any],
    sizes: Mapping[str, int],
    timeout_s: float = 900.0,
) -> None:
    """Train ``variant`` in a pinned child process and save the artifact into ``staging``.

    Raises:
        ModelError: the child failed or timed out; its output's tail is attached
            as a note.
    """
    from chaosrec.adapters.process.launch import child_launch

    threads = str(int(config.get("num_threads", 2)))
    env = {
        **os.environ,
        **PINNED_ENV,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    request = json.dumps(
        {
            "staging": str(staging),
            "variant": variant,
            "seed": seed,
            "config": dict(config),
            "sizes": dict(sizes),
        }
    )
    argv, preexec = child_launch([sys.executable, "-m", "chaosrec.model._pinned", request])
    log = staging / "train.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=preexec
        )
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        finally:  # a timeout, Ctrl-C: never leave the child training
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    log.unlink(missing_ok=True)
    if code != 0:
        why = f"timed out after {timeout_s:.0f} s" if code is None else f"exited with {code}"
        error = ModelError(
            f"Training the {variant!r} model in its pinned child process {why}; "
            "see the output below, fix the cause and run `chaosrec model train` again"
        )
        error.add_note("\n".join(tail))
        raise error


def _main(request_json: str) -> int:
    request = json.loads(request_json)
    import torch

    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # a ContextProp
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "DEFAULT":
        print(f"ATEN_CPU_CAPABILITY was not honoured (capability {capability})", file=sys.stderr)
        return 3
    from chaosrec.model.artifacts import save_artifact
    from chaosrec.model.catalog import generate_catalog
    from chaosrec.model.config import TrainConfig
    from chaosrec.model.train import train_model

    sizes = request["sizes"]
    catalog = generate_catalog(request["seed"], sizes["n_users"], sizes["n_items"])
    config = TrainConfig(**request["config"])
    trained = train_model(catalog, request["variant"], config=config, device="cpu")
    save_artifact(trained, catalog, Path(request["staging"]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))

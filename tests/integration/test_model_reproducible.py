"""The reference model is the same model on every x86-64 CPU.

torch picks its CPU kernels by the CPU's capability (``ATEN_CPU_CAPABILITY``:
``default``, ``avx2``, ``avx512``), which changes trained bits. Each run here is a
fresh interpreter with a different capability and an empty cache: it trains the
good and bad models (``ensure_model`` trains in a pinned child process), then
serves the golden set and evaluates under *its own* capability. The models must
come out bit-identical, and every property the suite relies on must hold for each.
On a CPU without AVX512, ``avx512`` falls back to the best capability it has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaosrec.model import REFERENCE_RECALL_AT_10

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "golden" / "recsys.json"

_SCRIPT = """
import json, torch
from chaosrec.model import ensure_model, evaluate, generate_catalog, recommend
good, bad = ensure_model("good"), ensure_model("bad")
golden = good.golden
items, _ = recommend(good, list(golden.user_ids))
served = [tuple(row) for row in items[:, :10].tolist()]
result = evaluate(good, generate_catalog(), k=10)
print(json.dumps({
    "capability": torch.backends.cpu.get_cpu_capability(),
    "good": good.version,
    "bad": bad.version,
    "trained_under": good.meta["numerics"]["cpu_capability"],
    "recall": result["model"]["recall@10"],
    "recorded_recall": good.meta["metrics"]["model"]["recall@10"],
    "popularity_recall": result["popularity"]["recall@10"],
    "bad_recall": bad.meta["metrics"]["model"]["recall@10"],
    "golden_users": list(golden.user_ids),
    "golden_relevant": [list(r) for r in golden.relevant],
    "served_rows_differing": sum(s != e for s, e in zip(served, golden.expected)),
}))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for capability in ("avx2", "avx512"):
        cache = tmp_path_factory.mktemp(f"cache-{capability}")
        env = {
            **os.environ,
            "ATEN_CPU_CAPABILITY": capability,
            "CHAOSREC_CACHE_DIR": str(cache),
            "CUDA_VISIBLE_DEVICES": "",
        }
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        out[capability] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_training_gives_the_same_bits_under_every_capability(
    runs: dict[str, dict[str, object]],
) -> None:
    assert {r["trained_under"] for r in runs.values()} == {"DEFAULT"}
    assert len({r["good"] for r in runs.values()}) == 1
    assert len({r["bad"] for r in runs.values()}) == 1


@pytest.mark.parametrize("capability", ["avx2", "avx512"])
def test_the_models_properties_hold_under_each_capability(
    runs: dict[str, dict[str, object]], capability: str
) -> None:
    run = runs[capability]
    low, high = REFERENCE_RECALL_AT_10
    recall = float(run["recall"])  # type: ignore[arg-type]
    assert low <= recall <= high
    assert recall == pytest.approx(float(run["recorded_recall"]))  # type: ignore[arg-type]
    assert recall >= 1.5 * float(run["popularity_recall"])  # type: ignore[arg-type]
    assert float(run["bad_recall"]) < 0.5 * recall  # type: ignore[arg-type]
    assert run["served_rows_differing"] == 0  # serving under this capability = training's top-10
    fixture = json.loads(FIXTURE.read_text())
    assert run["golden_users"] == fixture["user_ids"]
    assert run["golden_relevant"] == fixture["relevant"]

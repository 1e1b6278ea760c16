"""The real reference models: quality, TorchScript portability, caching and export.

Trains the default ``good`` (~15-20 s with evaluation) and ``bad`` (~3 s) artifacts once per
session into a temporary ``CHAOSREC_CACHE_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chaosrec.errors import ModelError
from chaosrec.model import (
    Catalog,
    ModelArtifact,
    ensure_model,
    evaluate,
    export_triton_repository,
    generate_catalog,
    load_artifact,
    recommend,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh ``CHAOSREC_CACHE_DIR`` for this module's tests (module scope, so the
    variable is restored before other modules run: they must see the real cache).

    Under pytest-xdist every worker points at the same folder inside the run's
    shared temp dir, so the artifact lock lets one worker train while the others wait.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent / "chaosrec-model-cache"
        root.mkdir(exist_ok=True)
    else:
        root = tmp_path_factory.mktemp("chaosrec-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHAOSREC_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def good(model_cache: Path) -> ModelArtifact:
    return ensure_model("good")


@pytest.fixture(scope="module")
def bad(model_cache: Path) -> ModelArtifact:
    return ensure_model("bad")


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return generate_catalog()


def _recall(artifact: ModelArtifact, side: str = "model") -> float:
    return float(artifact.meta["metrics"][side]["recall@10"])


def test_artifacts_live_under_the_cache_env(good: ModelArtifact, model_cache: Path) -> None:
    assert good.path.parent == model_cache / "models"
    assert good.path.name.startswith("good-seed7-")
    assert not list(good.path.parent.glob(f".{good.path.name}.tmp*"))  # staging cleaned up


def test_good_model_beats_popularity(good: ModelArtifact) -> None:
    assert _recall(good) >= 1.5 * _recall(good, "popularity")
    metrics = good.meta["metrics"]
    assert metrics["model"]["ndcg@10"] > metrics["popularity"]["ndcg@10"]


def test_evaluate_reproduces_the_recorded_metrics(good: ModelArtifact, catalog: Catalog) -> None:
    result = evaluate(good, catalog, k=10)
    assert result["model"] == pytest.approx(good.meta["metrics"]["model"])
    assert result["popularity"] == pytest.approx(good.meta["metrics"]["popularity"])
    assert result["recall_lift"] >= 1.5


def test_bad_model_is_clearly_worse(good: ModelArtifact, bad: ModelArtifact) -> None:
    assert bad.version != good.version
    assert bad.meta["variant"] == "bad"
    assert _recall(bad) < 0.5 * _recall(good)
    assert _recall(bad) < _recall(bad, "popularity")


def test_torchscript_loads_without_chaosrec(good: ModelArtifact, tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import json, sys, torch
        assert "chaosrec" not in sys.modules
        m = torch.jit.load({str(good.model_file)!r})
        flat = m(torch.arange(9, dtype=torch.int64))
        column = m(torch.arange(9, dtype=torch.int64).reshape(9, 1))
        print(json.dumps({{
            "shapes": [list(t.shape) for t in flat + column],
            "dtypes": [str(t.dtype) for t in flat],
            "same": bool(torch.equal(flat[0], column[0])),
        }}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # so the checkout is not importable
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shapes"] == [[9, 50]] * 4
    assert result["dtypes"] == ["torch.int64", "torch.float32"]
    assert result["same"]


def test_history_excluded_and_unknown_users_get_popularity(
    good: ModelArtifact, catalog: Catalog
) -> None:
    users = np.arange(0, catalog.n_users, 7)
    items, scores = recommend(good, users)
    assert items.shape == (users.size, 50)
    for row, user in enumerate(users):
        assert not set(items[row].tolist()) & set(catalog.train_items(int(user)).tolist())
        assert len(set(items[row].tolist())) == 50
    assert np.all(np.diff(scores, axis=1) <= 0)
    unknown, _ = recommend(good, [-1, catalog.n_users, 2**40])
    assert all(row.tolist() == good.popularity[:50] for row in unknown)


def test_golden_set_is_consistent(good: ModelArtifact, catalog: Catalog) -> None:
    golden = good.golden
    assert len(golden.user_ids) == 500
    items, _ = recommend(good, list(golden.user_ids))
    assert [tuple(r) for r in items[:, :10].tolist()] == list(golden.expected)
    assert golden.metrics["recall@10"] >= 1.5 * _recall(good, "popularity") * 0.8


def test_cache_hit_returns_the_same_artifact_without_retraining(good: ModelArtifact) -> None:
    again = ensure_model("good")
    assert again.path == good.path
    assert again.version == good.version
    assert again.meta["created_at"] == good.meta["created_at"]


def test_explicit_cache_dir_and_force_rebuild(bad: ModelArtifact, tmp_path: Path) -> None:
    first = ensure_model("bad", cache_dir=tmp_path)
    assert first.path.parent == tmp_path
    assert first.version == bad.version  # deterministic across builds
    rebuilt = ensure_model("bad", cache_dir=tmp_path, force=True)
    assert rebuilt.version == first.version
    assert rebuilt.meta["created_at"] != first.meta["created_at"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [first.path.name]


def test_corrupted_cache_is_reported_not_served(bad: ModelArtifact, tmp_path: Path) -> None:
    shutil.copytree(bad.path, tmp_path / bad.path.name)
    broken = tmp_path / bad.path.name / "model.pt"
    broken.write_bytes(broken.read_bytes()[:-100])
    with pytest.raises(ModelError, match=r"corrupted.*chaosrec model train --force --variant bad"):
        ensure_model("bad", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="corrupted"):
        load_artifact(tmp_path / bad.path.name).verify()


def test_parallel_builds_share_one_reproducible_training(
    bad: ModelArtifact, tmp_path: Path
) -> None:
    code = (
        "import sys; from pathlib import Path; from chaosrec.model import ensure_model; "
        "print(ensure_model('bad', cache_dir=Path(sys.argv[1])).version)"
    )
    # Different hash seeds too: TorchScript output must not depend on set iteration order.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        )
        for hash_seed in (1, 2)
    ]
    versions = [proc.communicate(timeout=300)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert versions == [bad.version, bad.version]
    dirs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert [p.name for p in dirs] == [bad.path.name]


def test_export_triton_repository(good: ModelArtifact, tmp_path: Path) -> None:
    model_dir = export_triton_repository(good, tmp_path / "repo")
    assert (model_dir / "1" / "model.pt").read_bytes() == good.model_file.read_bytes()
    text = (model_dir / "config.pbtxt").read_text(encoding="utf-8")
    for line in (
        'platform: "pytorch_libtorch"',
        "max_batch_size: 64",
        'name: "INPUT__0"',
        "dims: [ 50 ]",
        "dynamic_batching { }",
    ):
        assert line in text
    assert f"Model version {good.version}" in text

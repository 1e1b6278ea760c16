"""Artifact folders from a tiny model: files, verification, golden set and Triton export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosrec.errors import ConfigError, ModelError
from chaosrec.model import (
    Catalog,
    ModelArtifact,
    TrainConfig,
    cache_key,
    default_cache_dir,
    export_triton_repository,
    generate_catalog,
    load_artifact,
    recommend,
    save_artifact,
    train_model,
)


@pytest.fixture(scope="module")
def tiny_catalog() -> Catalog:
    return generate_catalog(5, n_users=150, n_items=1_000, interactions_per_user=(10, 15))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, tiny_catalog: Catalog) -> ModelArtifact:
    config = TrainConfig(holdout_epochs=1, refit_epochs=1, ranker_epochs=1)
    trained = train_model(tiny_catalog, "good", config=config, device="cpu")
    return save_artifact(trained, tiny_catalog, tmp_path_factory.mktemp("tiny") / "artifact")


def test_folder_contents_and_meta(artifact: ModelArtifact) -> None:
    assert sorted(p.name for p in artifact.path.iterdir()) == [
        "golden.json",
        "meta.json",
        "model.pt",
        "popularity.json",
    ]
    meta = artifact.meta
    assert meta["version"] == artifact.version == artifact.sha256[:12]
    assert len(artifact.sha256) == 64
    assert meta["variant"] == "good"
    assert (meta["seed"], meta["n_users"], meta["n_items"], meta["top_k"]) == (5, 150, 1_000, 50)
    assert meta["device_trained"] == "cpu"
    assert meta["train_seconds"] > 0
    for side in ("model", "popularity"):
        assert set(meta["metrics"][side]) == {"recall@10", "ndcg@10", "precision@10", "f1@10"}
    assert "created_at" in meta
    artifact.verify()


def test_popularity_is_the_training_top_100(artifact: ModelArtifact, tiny_catalog: Catalog) -> None:
    assert artifact.popularity == tiny_catalog.popularity_ranking()[:100].tolist()


def test_golden_set_matches_the_module(artifact: ModelArtifact, tiny_catalog: Catalog) -> None:
    golden = artifact.golden
    assert golden.k == 10
    assert len(golden.user_ids) == 150  # min(500, n_users)
    assert list(golden.user_ids) == sorted(golden.user_ids)
    for user, relevant in zip(golden.user_ids, golden.relevant, strict=True):
        assert list(relevant) == tiny_catalog.test_items(user).tolist()
    items, _ = recommend(artifact, list(golden.user_ids))
    assert [tuple(row[:10]) for row in items.tolist()] == list(golden.expected)
    assert golden.score(golden.expected) == pytest.approx(dict(golden.metrics))


def test_golden_score_rejects_wrong_row_count(artifact: ModelArtifact) -> None:
    with pytest.raises(ConfigError, match="one per golden user"):
        artifact.golden.score([[1, 2, 3]])


def test_corrupted_model_is_detected(artifact: ModelArtifact, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in artifact.path.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    loaded = load_artifact(copy)
    loaded.verify()
    data = bytearray((copy / "model.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.pt").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"corrupted.*chaosrec model train --force") as info:
        loaded.verify()
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError):
        loaded.load_module()
    (copy / "model.pt").unlink()
    with pytest.raises(ModelError, match=r"no model\.pt"):
        loaded.verify()


def test_unreadable_meta_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="Cannot read"):
        load_artifact(tmp_path)


def test_save_refuses_an_existing_artifact(artifact: ModelArtifact, tiny_catalog: Catalog) -> None:
    trained = train_model(tiny_catalog, "bad", config=TrainConfig(), device="cpu")
    with pytest.raises(ConfigError, match="already holds an artifact"):
        save_artifact(trained, tiny_catalog, artifact.path)


@pytest.mark.parametrize("kind", ["KIND_CPU", "KIND_GPU"])
def test_triton_repository(artifact: ModelArtifact, tmp_path: Path, kind: str) -> None:
    model_dir = export_triton_repository(artifact, tmp_path / "repo", "recsys", 32, kind=kind)
    assert model_dir == tmp_path / "repo" / "recsys"
    assert (model_dir / "1" / "model.pt").read_bytes() == artifact.model_file.read_bytes()
    text = (model_dir / "config.pbtxt").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    for expected in (
        'name: "recsys"',
        'platform: "pytorch_libtorch"',
        "max_batch_size: 32",
        'name: "INPUT__0"',
        'name: "OUTPUT__0"',
        'name: "OUTPUT__1"',
        "data_type: TYPE_INT64",
        "data_type: TYPE_FP32",
        "dims: [ 1 ]",
        "dims: [ 50 ]",
        "dynamic_batching { }",
        f"kind: {kind}",
    ):
        assert expected in lines, expected
    assert text.count("{") == text.count("}") and text.count("[") == text.count("]")
    # Exporting again replaces the folder instead of failing.
    export_triton_repository(artifact, tmp_path / "repo", "recsys", 32, kind=kind)


def test_triton_repository_defaults_to_this_machine(
    artifact: ModelArtifact, tmp_path: Path
) -> None:
    import torch

    text = (export_triton_repository(artifact, tmp_path) / "config.pbtxt").read_text()
    assert "max_batch_size: 64" in text
    assert ("KIND_GPU" if torch.cuda.is_available() else "KIND_CPU") in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"model_name": ""}, "model_name=''", id="empty-name"),
        pytest.param({"model_name": "a/b"}, "model_name='a/b'", id="slash"),
        pytest.param({"max_batch_size": 0}, "max_batch_size=0", id="batch"),
        pytest.param({"kind": "KIND_TPU"}, "kind='KIND_TPU'", id="kind"),
    ],
)
def test_triton_export_checks(
    artifact: ModelArtifact, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        export_triton_repository(artifact, tmp_path, **kwargs)  # type: ignore[arg-type]


def test_triton_export_never_deletes_a_foreign_folder(
    artifact: ModelArtifact, tmp_path: Path
) -> None:
    (tmp_path / "recsys").mkdir()
    (tmp_path / "recsys" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a Triton model folder"):
        export_triton_repository(artifact, tmp_path)
    assert (tmp_path / "recsys" / "notes.txt").read_text() == "keep me"


def test_cache_key_depends_on_every_input() -> None:
    sizes = {"n_users": 5_000, "n_items": 10_000}
    base = cache_key("good", 7, TrainConfig(), sizes)
    assert base == cache_key("good", 7, TrainConfig(), dict(sizes))
    assert base != cache_key("bad", 7, TrainConfig(), sizes)
    assert base != cache_key("good", 8, TrainConfig(), sizes)
    assert base != cache_key("good", 7, TrainConfig(dim=32), sizes)
    assert base != cache_key("good", 7, TrainConfig(), {**sizes, "n_users": 10})


def test_default_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("CHAOSREC_CACHE_DIR")
    assert default_cache_dir().name == "models"
    assert default_cache_dir().parent.name.lower() == "chaosrec"


def test_meta_json_is_plain_json(artifact: ModelArtifact) -> None:
    assert json.loads((artifact.path / "meta.json").read_text()) == dict(artifact.meta)

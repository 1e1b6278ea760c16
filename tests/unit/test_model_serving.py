"""The serving module on a tiny catalog (trains in ~1 s): shapes, exclusions, fallbacks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from chaosrec.errors import ConfigError, ModelError
from chaosrec.model import (
    Catalog,
    TrainConfig,
    TrainedModel,
    generate_catalog,
    pick_device,
    train_model,
)
from chaosrec.model._torchscript import load, save_canonical, script
from chaosrec.model.serving import grouped_topk

TINY_CONFIG = TrainConfig(holdout_epochs=2, refit_epochs=1, ranker_epochs=2)


@pytest.fixture(scope="module")
def tiny_catalog() -> Catalog:
    return generate_catalog(3, n_users=200, n_items=1_200, interactions_per_user=(10, 15))


@pytest.fixture(scope="module")
def tiny_model(tiny_catalog: Catalog) -> TrainedModel:
    return train_model(tiny_catalog, "good", config=TINY_CONFIG, device="cpu")


@pytest.fixture(scope="module")
def scripted(tiny_model: TrainedModel) -> torch.jit.ScriptModule:
    return script(tiny_model.module)


def _run(module: torch.nn.Module, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        items, scores = module(torch.tensor(ids, dtype=torch.int64))
    return items, scores


@pytest.mark.parametrize("shape", [(7,), (7, 1)], ids=["flat", "triton-column"])
def test_shapes_and_dtypes(scripted: torch.jit.ScriptModule, shape: tuple[int, ...]) -> None:
    ids = torch.arange(7, dtype=torch.int64).reshape(shape)
    with torch.inference_mode():
        items, scores = scripted(ids)
    assert items.shape == scores.shape == (7, 50)
    assert items.dtype == torch.int64
    assert scores.dtype == torch.float32


def test_scripted_matches_eager(tiny_model: TrainedModel, scripted: torch.jit.ScriptModule) -> None:
    ids = list(range(0, 200, 9))
    eager_items, eager_scores = _run(tiny_model.module, ids)
    script_items, script_scores = _run(scripted, ids)
    assert torch.equal(eager_items, script_items)
    assert torch.allclose(eager_scores, script_scores)


def test_history_is_excluded_and_lists_are_ranked(
    scripted: torch.jit.ScriptModule, tiny_catalog: Catalog
) -> None:
    users = list(range(tiny_catalog.n_users))
    items, scores = _run(scripted, users)
    for user in users:
        row = items[user].tolist()
        assert len(set(row)) == 50
        assert not set(row) & set(tiny_catalog.train_items(user).tolist())
        assert all(0 <= i < tiny_catalog.n_items for i in row)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])


@pytest.mark.parametrize("user_id", [-1, -(2**40), 200, 10**12], ids=str)
def test_unknown_users_get_the_popularity_list(
    scripted: torch.jit.ScriptModule, tiny_catalog: Catalog, user_id: int
) -> None:
    items, scores = _run(scripted, [user_id, 0])
    popular = tiny_catalog.popularity_ranking()[:50]
    counts = tiny_catalog.train_item_counts()[popular]
    assert items[0].tolist() == popular.tolist()
    assert np.allclose(scores[0].numpy(), np.log1p(counts))
    assert items[1].tolist() != popular.tolist()  # known users in the same batch are unaffected


def test_empty_batch(scripted: torch.jit.ScriptModule) -> None:
    items, scores = _run(scripted, [])
    assert items.shape == scores.shape == (0, 50)


def test_training_is_deterministic(tiny_catalog: Catalog, tiny_model: TrainedModel) -> None:
    again = train_model(tiny_catalog, "good", config=TINY_CONFIG, device="cpu")
    first, second = tiny_model.module.state_dict(), again.module.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_training_restores_global_torch_state(tiny_catalog: Catalog) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_model(tiny_catalog, "bad", config=TINY_CONFIG, device="cpu")
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_canonical_save_is_byte_reproducible(
    scripted: torch.jit.ScriptModule, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    save_canonical(scripted, tmp_path / "a" / "model.pt")
    save_canonical(scripted, tmp_path / "b" / "model.pt")
    digests = {hashlib.sha256((tmp_path / d / "model.pt").read_bytes()).digest() for d in "ab"}
    assert len(digests) == 1
    reloaded = load(tmp_path / "a" / "model.pt")
    assert torch.equal(_run(reloaded, [1, 2])[0], _run(scripted, [1, 2])[0])


@pytest.mark.parametrize(
    ("batch", "n_cols", "k", "groups"),
    [(3, 10_008, 200, 8), (5, 4_000, 50, 8), (2, 800, 200, 8), (4, 97, 5, 1), (1, 64, 64, 8)],
    ids=["serving-size", "small-k", "fallback", "one-group", "k-equals-n"],
)
def test_grouped_topk_equals_topk(batch: int, n_cols: int, k: int, groups: int) -> None:
    generator = torch.Generator().manual_seed(n_cols)
    scores = torch.randn(batch, n_cols, generator=generator)
    scores[0, : n_cols // 3] = float("-inf")
    values, indices = grouped_topk(scores, k, groups)
    want_values, want_indices = torch.topk(scores, k, dim=1)
    assert torch.equal(values, want_values)
    assert torch.equal(indices[:, : k // 2], want_indices[:, : k // 2])
    assert torch.equal(scores.gather(1, indices), values)


def test_pick_device_matches_cuda_availability() -> None:
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_unknown_variant_is_a_config_error(tiny_catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="variant='ugly'"):
        train_model(tiny_catalog, "ugly")


def test_retrieve_k_must_fit_the_catalog() -> None:
    small = generate_catalog(1, n_users=20, n_items=220, interactions_per_user=(30, 40))
    with pytest.raises(ConfigError, match="retrieve_k=200 must be <="):
        train_model(small, "good", config=TINY_CONFIG)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"dim": 0}, "dim=0", id="dim"),
        pytest.param({"holdout_epochs": -1}, "holdout_epochs=-1", id="epochs"),
        pytest.param({"history_keep": 1.0}, "history_keep=1.0", id="keep"),
        pytest.param({"learning_rate": 0.0}, "learning_rate=0.0", id="lr"),
        pytest.param({"top_k": 300}, "retrieve_k=200", id="top-k-above-retrieve-k"),
        pytest.param({"num_threads": True}, "num_threads=True", id="bool-threads"),
    ],
)
def test_train_config_checks(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)  # type: ignore[arg-type]


def test_divergence_is_a_model_error(tiny_catalog: Catalog) -> None:
    config = TrainConfig(holdout_epochs=3, refit_epochs=0, ranker_epochs=0, learning_rate=1e30)
    with pytest.raises(ModelError, match="diverged"):
        train_model(tiny_catalog, "good", config=config, device="cpu")

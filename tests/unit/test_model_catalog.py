"""The synthetic catalog: determinism, sizes, skew, taste structure and splits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chaosrec.errors import ConfigError
from chaosrec.model import CSR, Catalog, generate_catalog


def _small(seed: int) -> Catalog:
    return generate_catalog(seed, n_users=300, n_items=2_000)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return generate_catalog()


def _arrays(cat: Catalog) -> list[np.ndarray[Any, Any]]:
    return [
        cat.item_category,
        cat.item_popularity,
        cat.train_indptr,
        cat.train_indices,
        cat.test_indptr,
        cat.test_indices,
    ]


def test_same_seed_gives_byte_identical_arrays() -> None:
    first, second = _small(11), _small(11)
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        assert a.dtype == b.dtype
        assert a.tobytes() == b.tobytes()
    assert first.fingerprint() == second.fingerprint()


def test_different_seeds_differ() -> None:
    first, second = _small(11), _small(12)
    assert first.fingerprint() != second.fingerprint()
    assert not np.array_equal(first.train_indices, second.train_indices)


def test_default_sizes(catalog: Catalog) -> None:
    assert (catalog.n_users, catalog.n_items, catalog.seed) == (5_000, 10_000, 7)
    assert catalog.n_categories == 20
    assert catalog.item_category.shape == (10_000,)
    assert set(np.unique(catalog.item_category)) == set(range(20))
    assert catalog.train_indptr.shape == catalog.test_indptr.shape == (5_001,)
    per_user = catalog.train.lengths() + catalog.test.lengths()
    assert per_user.min() >= 30 and per_user.max() <= 40
    test_share = catalog.test_indices.size / (
        catalog.test_indices.size + catalog.train_indices.size
    )
    assert 0.18 < test_share < 0.22
    assert catalog.test.lengths().min() >= 1


def test_dtypes_and_read_only(catalog: Catalog) -> None:
    for array in _arrays(catalog):
        assert not array.flags.writeable
    for array in (catalog.item_category, catalog.train_indices, catalog.test_indptr):
        assert array.dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        catalog.train_indices[0] = 1


def test_popularity_is_zipf_skewed(catalog: Catalog) -> None:
    assert catalog.item_popularity.sum() == pytest.approx(1.0)
    counts = np.sort(catalog.train_item_counts())[::-1]
    top_share = counts[:100].sum() / counts.sum()  # the top 1% of items
    assert top_share > 0.10
    assert counts[0] > 20 * np.median(counts)


def test_popularity_ranking_orders_by_training_count(catalog: Catalog) -> None:
    ranking = catalog.popularity_ranking()
    counts = catalog.train_item_counts()[ranking]
    assert sorted(ranking.tolist()) == list(range(catalog.n_items))
    assert np.all(np.diff(counts) <= 0)


def test_train_and_test_never_overlap_and_have_no_duplicates(catalog: Catalog) -> None:
    for user in range(catalog.n_users):
        train, test = catalog.train_items(user), catalog.test_items(user)
        assert len(set(train.tolist())) == train.size
        assert len(set(test.tolist())) == test.size
        assert not set(train.tolist()) & set(test.tolist())


def test_users_have_taste_beyond_popularity(catalog: Catalog) -> None:
    """A user's held-out items fall in their own top training categories far more than chance."""
    categories = catalog.item_category
    in_favourites: list[bool] = []
    for user in range(catalog.n_users):
        train_cats = np.bincount(categories[catalog.train_items(user)], minlength=20)
        favourites = set(np.argsort(-train_cats)[:3].tolist())
        in_favourites.extend(c in favourites for c in categories[catalog.test_items(user)])
    assert np.mean(in_favourites) > 0.5  # 3 of 20 categories would give ~0.15


def test_csr_take_selects_rows_in_order(catalog: Catalog) -> None:
    picked = catalog.test.take([3, 0, 3])
    assert isinstance(picked, CSR)
    assert picked.n_rows == 3
    assert picked.row(0).tolist() == catalog.test_items(3).tolist()
    assert picked.row(1).tolist() == catalog.test_items(0).tolist()
    assert catalog.test.take([]).n_rows == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"seed": -1}, "seed=-1", id="negative-seed"),
        pytest.param({"n_users": 0}, "n_users=0", id="no-users"),
        pytest.param({"n_users": 2.5}, "n_users=2.5", id="float-users"),
        pytest.param({"n_items": 30}, "n_items=30", id="fewer-items-than-interactions"),
        pytest.param({"n_categories": 2}, "n_categories=2", id="too-few-categories"),
        pytest.param({"test_fraction": 0.0}, "test_fraction=0.0", id="no-test-split"),
        pytest.param({"test_fraction": 1.0}, "test_fraction=1.0", id="all-test"),
        pytest.param({"interactions_per_user": (1, 5)}, r"interactions_per_user\[0\]=1", id="low"),
        pytest.param(
            {"interactions_per_user": (9, 5)}, r"interactions_per_user\[1\]=5", id="order"
        ),
    ],
)
def test_invalid_arguments_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_catalog(**kwargs)  # type: ignore[arg-type]

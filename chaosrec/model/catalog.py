"""A deterministic synthetic e-commerce dataset for the reference recommender.

The generative story, per seed:

* items belong to one of ``n_categories`` categories (uniformly at random) and
  have a Zipf-like popularity ``p_i ∝ (r_i + 1) ** -1`` over a random rank
  permutation ``r``;
* every item and every user has a latent taste vector (``_LATENT_DIM`` standard
  normals), and each user prefers 2 or 3 categories with Dirichlet weights ``w_uc``;
* a user's interactions are drawn *without replacement* with probability
  ``∝ p_i ** _POPULARITY_WEIGHT · exp(affinity_ui)`` where
  ``affinity_ui = _CATEGORY_WEIGHT · sqrt(w_u,cat(i)) + _LATENT_WEIGHT · z_u·z_i / sqrt(d)``,
  so there is signal beyond popularity (categories and latent tastes);
* the draw order is the interaction "time": the last ``test_fraction`` of each
  user's interactions (at least one) are held out as the test split.

Sampling without replacement uses Gumbel-top-k keys (``log weight + Gumbel noise``,
keep the largest) computed in float64 in fixed-size user chunks,
so the same seed gives byte-identical arrays and generation takes ~1-2 s.

Example::

    >>> cat = generate_catalog(seed=7, n_users=50, n_items=500)
    >>> cat.n_users, cat.n_items
    (50, 500)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from chaosrec.errors import ConfigError
from chaosrec.model._csr import CSR
from chaosrec.model._validation import check_int, check_open_fraction

__all__ = ["DEFAULT_N_ITEMS", "DEFAULT_N_USERS", "Catalog", "generate_catalog"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DEFAULT_N_USERS = 5_000
DEFAULT_N_ITEMS = 10_000
_LATENT_DIM = 16
_ZIPF_EXPONENT = 1.0
_POPULARITY_WEIGHT = 0.8
_CATEGORY_WEIGHT = 5.0
_LATENT_WEIGHT = 1.0
_PREFERRED_CATEGORIES = (2, 3)
_CHUNK_USERS = 500
_BLOCK = 64


@dataclass(frozen=True, eq=False)
class Catalog:
    """Items, users and their interactions; every array is read-only.

    Interactions are stored as CSR: the items of user ``u`` are
    ``indices[indptr[u]:indptr[u + 1]]`` in interaction order (oldest first).
    Train and test items of one user never overlap.

    Attributes:
        seed: the seed the catalog was generated from.
        n_users: number of users; user ids are ``0 .. n_users - 1``.
        n_items: number of items; item ids are ``0 .. n_items - 1``.
        n_categories: number of categories; category ids are ``0 .. n_categories - 1``.
        item_category: int64 ``[n_items]``, the category of each item.
        item_popularity: float64 ``[n_items]``, the generative (Zipf) popularity,
            summing to 1. What a service can observe is :meth:`train_item_counts`.
        train_indptr, train_indices: the training interactions (CSR, int64).
        test_indptr, test_indices: the held-out interactions (CSR, int64).
    """

    seed: int
    n_users: int
    n_items: int
    n_categories: int
    item_category: IntArray
    item_popularity: FloatArray
    train_indptr: IntArray
    train_indices: IntArray
    test_indptr: IntArray
    test_indices: IntArray

    @property
    def train(self) -> CSR:
        """The training interactions as a :class:`CSR` (one row per user)."""
        return CSR(self.train_indptr, self.train_indices)

    @property
    def test(self) -> CSR:
        """The held-out interactions as a :class:`CSR` (one row per user)."""
        return CSR(self.test_indptr, self.test_indices)

    def train_items(self, user: int) -> IntArray:
        """The training items of ``user``, oldest first."""
        return self.train_indices[self.train_indptr[user] : self.train_indptr[user + 1]]

    def test_items(self, user: int) -> IntArray:
        """The held-out items of ``user``, oldest first."""
        return self.test_indices[self.test_indptr[user] : self.test_indptr[user + 1]]

    def train_item_counts(self) -> IntArray:
        """How many training interactions each item has, int64 ``[n_items]``."""
        return np.bincount(self.train_indices, minlength=self.n_items).astype(np.int64)

    def popularity_ranking(self) -> IntArray:
        """All item ids by descending training count (ties: lower id first)."""
        counts = self.train_item_counts()
        # lexsort sorts by the last key first: count descending, then id ascending.
        ranking: IntArray = np.lexsort((np.arange(self.n_items), -counts)).astype(np.int64)
        return ranking

    def fingerprint(self) -> str:
        """sha256 (hex) over every array and size; equal iff the catalogs are identical."""
        digest = hashlib.sha256()
        digest.update(f"{self.seed}:{self.n_users}:{self.n_items}:{self.n_categories}".encode())
        for array in (
            self.item_category,
            self.item_popularity,
            self.train_indptr,
            self.train_indices,
            self.test_indptr,
            self.test_indices,
        ):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


_Array = TypeVar("_Array", bound=npt.NDArray[Any])


def _readonly(array: _Array) -> _Array:
    array.setflags(write=False)
    return array


def _preference_weights(rng: np.random.Generator, n_users: int, n_categories: int) -> FloatArray:
    """Per-user category weights ``[n_users, n_categories]``: 2-3 non-zero, summing to 1."""
    low, high = _PREFERRED_CATEGORIES
    n_preferred = rng.integers(low, high + 1, size=n_users)
    order = np.argsort(rng.random((n_users, n_categories)), axis=1)
    raw = rng.gamma(1.0, size=(n_users, n_categories))
    chosen = np.arange(n_categories)[None, :] < n_preferred[:, None]
    weights = np.zeros((n_users, n_categories))
    np.put_along_axis(weights, order, np.where(chosen, raw, 0.0), axis=1)
    normalised: FloatArray = weights / weights.sum(axis=1, keepdims=True)
    return normalised


def _top_keys(keys: FloatArray, count: int) -> IntArray:
    """Column indices of the ``count`` largest keys of each row, largest first.

    Faster than a row-wise ``argpartition``: the ``count``-th largest of the
    block maxima (blocks of ``_BLOCK`` columns) is a lower bound of the row's
    ``count``-th largest key, so only the few keys above it need sorting.
    """
    n_rows, n_cols = keys.shape
    n_blocks = -(-n_cols // _BLOCK)
    if n_blocks < count:
        top: IntArray = np.argsort(-keys, axis=1, kind="stable")[:, :count].astype(np.int64)
        return top
    padded = np.pad(keys, ((0, 0), (0, n_blocks * _BLOCK - n_cols)), constant_values=-np.inf)
    block_max = padded.reshape(n_rows, n_blocks, _BLOCK).max(axis=2)
    threshold = np.partition(block_max, n_blocks - count, axis=1)[:, n_blocks - count]
    rows, cols = np.nonzero(keys >= threshold[:, None])
    order = np.lexsort((-keys[rows, cols], rows))
    cols = cols[order]
    starts = np.searchsorted(rows[order], np.arange(n_rows))
    selected: IntArray = cols[starts[:, None] + np.arange(count)[None, :]].astype(np.int64)
    return selected


def _sample_sequences(
    rng: np.random.Generator,
    log_item_weight: FloatArray,
    user_category_affinity: FloatArray,
    item_category: IntArray,
    user_latent: FloatArray,
    item_latent: FloatArray,
    max_len: int,
) -> IntArray:
    """Draw ``max_len`` distinct items per user, in draw order, ``[n_users, max_len]``.

    Gumbel-top-k: the largest ``max_len`` of ``log weight + Gumbel noise`` are a
    draw without replacement, and their order is the draw order.
    """
    n_users = user_latent.shape[0]
    scale = _LATENT_WEIGHT / np.sqrt(item_latent.shape[1])
    out = np.empty((n_users, max_len), dtype=np.int64)
    for start in range(0, n_users, _CHUNK_USERS):
        rows = slice(start, min(start + _CHUNK_USERS, n_users))
        # -log(E), E ~ Exp(1), is Gumbel noise; the ziggurat draw plus one log is
        # about twice as fast as Generator.gumbel.
        keys = rng.standard_exponential(size=(rows.stop - rows.start, item_latent.shape[0]))
        np.log(keys, out=keys)
        np.subtract(log_item_weight[None, :], keys, out=keys)
        keys += user_category_affinity[rows][:, item_category]
        keys += scale * (user_latent[rows] @ item_latent.T)
        out[rows] = _top_keys(keys, max_len)
    return out


def _to_csr(rows: list[IntArray], n_rows: int) -> tuple[IntArray, IntArray]:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n_rows)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.concatenate(rows).astype(np.int64) if rows else np.empty(0, np.int64)
    return indptr, indices


def generate_catalog(
    seed: int = 7,
    n_users: int = DEFAULT_N_USERS,
    n_items: int = DEFAULT_N_ITEMS,
    *,
    n_categories: int = 20,
    interactions_per_user: tuple[int, int] = (30, 40),
    test_fraction: float = 0.2,
) -> Catalog:
    """Generate the synthetic catalog for ``seed`` (same seed ⇒ byte-identical arrays).

    Args:
        seed: seed of the ``numpy.random.Generator``.
        n_users: number of users (>= 1).
        n_items: number of items; must exceed the largest interaction count.
        n_categories: number of item categories (>= 3).
        interactions_per_user: inclusive ``(low, high)`` bounds of each user's
            interaction count, drawn uniformly; ``low >= 2``.
        test_fraction: share of each user's latest interactions held out, in (0, 1);
            every user keeps at least one train and one test item.

    Raises:
        ConfigError: an argument is out of range.
    """
    check_int("seed", seed, minimum=0)
    check_int("n_users", n_users, minimum=1)
    check_int("n_categories", n_categories, minimum=_PREFERRED_CATEGORIES[1])
    check_open_fraction("test_fraction", test_fraction)
    low, high = interactions_per_user
    check_int("interactions_per_user[0]", low, minimum=2)
    check_int("interactions_per_user[1]", high, minimum=low)
    if n_items <= high:
        raise ConfigError(
            f"n_items={n_items} must exceed interactions_per_user[1]={high}: "
            "every user draws that many distinct items"
        )

    rng = np.random.default_rng(seed)
    item_category = rng.integers(0, n_categories, size=n_items).astype(np.int64)
    ranks = rng.permutation(n_items)
    popularity = (ranks + 1.0) ** -_ZIPF_EXPONENT
    popularity /= popularity.sum()
    item_latent = rng.standard_normal((n_items, _LATENT_DIM))
    user_latent = rng.standard_normal((n_users, _LATENT_DIM))
    preference = _preference_weights(rng, n_users, n_categories)
    n_interactions = rng.integers(low, high + 1, size=n_users)

    sequences = _sample_sequences(
        rng,
        _POPULARITY_WEIGHT * np.log(popularity),
        _CATEGORY_WEIGHT * np.sqrt(preference),
        item_category,
        user_latent,
        item_latent,
        high,
    )
    n_test = np.maximum(1, np.rint(n_interactions * test_fraction).astype(np.int64))
    n_test = np.minimum(n_test, n_interactions - 1)
    n_train = n_interactions - n_test
    train_rows = [sequences[u, : n_train[u]] for u in range(n_users)]
    test_rows = [sequences[u, n_train[u] : n_interactions[u]] for u in range(n_users)]
    train_indptr, train_indices = _to_csr(train_rows, n_users)
    test_indptr, test_indices = _to_csr(test_rows, n_users)

    return Catalog(
        seed=seed,
        n_users=n_users,
        n_items=n_items,
        n_categories=n_categories,
        item_category=_readonly(item_category),
        item_popularity=_readonly(popularity),
        train_indptr=_readonly(train_indptr),
        train_indices=_readonly(train_indices),
        test_indptr=_readonly(test_indptr),
        test_indices=_readonly(test_indices),
    )

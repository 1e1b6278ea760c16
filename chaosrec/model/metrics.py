"""Top-k ranking metrics in plain numpy.

For one user with recommendation list ``rec`` (best first) and relevant set ``R``,
with ``hit_j = 1`` iff ``rec[j]`` is in ``R`` (``j = 0 .. k-1``; a repeated id
only counts at its first position, negative ids are padding and never hit):

* ``precision@k = Σ hit_j / k`` (the denominator is ``k`` even when fewer than
  ``k`` items were recommended);
* ``recall@k = Σ hit_j / |R|`` — the standard definition, *not* the capped
  ``/ min(k, |R|)`` variant; it only reaches 1 when ``|R| <= k``;
* ``f1@k = 2·P·R / (P + R)`` of that user's precision and recall (0 when both are 0);
* ``ndcg@k = DCG / IDCG`` with binary relevance and a log2 discount:
  ``DCG = Σ hit_j / log2(j + 2)`` and ``IDCG = Σ_{j < min(k, |R|)} 1 / log2(j + 2)``.

Each metric is the mean over users; users with an empty ``R`` are skipped.
Relevant items are given either as a :class:`~chaosrec.model._csr.CSR` (one row
per user, e.g. ``catalog.test``) or as a sequence of collections of item ids.

Example::

    >>> import numpy as np
    >>> recall_at_k(np.array([[3, 1, 2]]), [{1, 9}], k=2)
    0.5
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from chaosrec.errors import ConfigError
from chaosrec.model._csr import CSR
from chaosrec.model._validation import check_int

__all__ = [
    "Relevant",
    "f1_at_k",
    "metrics_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]

Relevant: TypeAlias = CSR | Sequence[Collection[int]]
"""Relevant item ids per user: a CSR or a sequence of collections."""

FloatArray = npt.NDArray[np.float64]


def _as_csr(relevant: Relevant) -> CSR:
    if isinstance(relevant, CSR):
        return relevant
    rows = [np.fromiter((int(i) for i in set(r)), dtype=np.int64) for r in relevant]
    lengths = np.array([r.size for r in rows], dtype=np.int64)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    return CSR(indptr, indices.astype(np.int64))


def _hits(recommended: npt.ArrayLike, relevant: Relevant, k: int) -> tuple[FloatArray, FloatArray]:
    """Return ``(hits [B, k] as 0/1 floats, |R| [B])`` after validating the inputs."""
    check_int("k", k, minimum=1)
    rec = np.asarray(recommended)
    if rec.ndim != 2 or not np.issubdtype(rec.dtype, np.integer):
        raise ConfigError(
            f"recommended has shape {rec.shape} and dtype {rec.dtype}; "
            "it must be a 2-D integer array [n_users, n_recommended]"
        )
    csr = _as_csr(relevant)
    if csr.n_rows != rec.shape[0]:
        raise ConfigError(
            f"recommended has {rec.shape[0]} rows but relevant has {csr.n_rows}; "
            "both need one row per user, in the same order"
        )
    if csr.indices.size and int(csr.indices.min()) < 0:
        raise ConfigError(f"relevant holds item id {int(csr.indices.min())}; item ids must be >= 0")
    top = rec[:, :k].astype(np.int64)
    n_rows, width = top.shape
    # Only the first occurrence of an id in a row may hit.
    earlier = np.tril(np.ones((width, width), dtype=bool), k=-1)
    repeated = ((top[:, :, None] == top[:, None, :]) & earlier[None, :, :]).any(axis=2)
    span = int(max(top.max(initial=0), csr.indices.max(initial=0))) + 1
    row_of_relevant = np.repeat(np.arange(n_rows, dtype=np.int64), csr.lengths())
    relevant_keys = row_of_relevant * span + csr.indices
    top_keys = np.arange(n_rows, dtype=np.int64)[:, None] * span + top
    hits = np.isin(top_keys, relevant_keys) & (top >= 0) & ~repeated
    padded = np.zeros((n_rows, k), dtype=np.float64)
    padded[:, :width] = hits
    unique_keys = np.unique(relevant_keys)
    n_relevant = np.bincount(unique_keys // span, minlength=n_rows).astype(np.float64)
    return padded, n_relevant


def _per_user(recommended: npt.ArrayLike, relevant: Relevant, k: int) -> dict[str, FloatArray]:
    hits, n_relevant = _hits(recommended, relevant, k)
    keep = n_relevant > 0
    if not keep.any():
        raise ConfigError(
            "relevant is empty for every user; at least one user needs a relevant item"
        )
    hits, n_relevant = hits[keep], n_relevant[keep]
    n_hits = hits.sum(axis=1)
    precision = n_hits / k
    recall = n_hits / n_relevant
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    discount = 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)
    dcg = hits @ discount
    ideal_cum = np.concatenate(([0.0], np.cumsum(discount)))
    idcg = ideal_cum[np.minimum(n_relevant, k).astype(np.int64)]
    return {
        f"precision@{k}": precision,
        f"recall@{k}": recall,
        f"f1@{k}": f1,
        f"ndcg@{k}": dcg / idcg,
    }


def metrics_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: int = 10) -> dict[str, float]:
    """All four metrics in one pass: ``{"recall@k", "ndcg@k", "precision@k", "f1@k"}``.

    Args:
        recommended: integer array ``[n_users, n]``, best item first; only the
            first ``k`` columns are used.
        relevant: relevant item ids, one row per user (same order as ``recommended``).
        k: cut-off (>= 1).

    Raises:
        ConfigError: shapes disagree, ``k < 1``, or no user has a relevant item.
    """
    per_user = _per_user(recommended, relevant, k)
    order = ("recall", "ndcg", "precision", "f1")
    return {f"{name}@{k}": float(per_user[f"{name}@{k}"].mean()) for name in order}


def recall_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: int = 10) -> float:
    """Mean recall@k, ``|top-k ∩ R| / |R|``, over users with a non-empty ``R``."""
    return float(_per_user(recommended, relevant, k)[f"recall@{k}"].mean())


def precision_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: int = 10) -> float:
    """Mean precision@k, ``|top-k ∩ R| / k``, over users with a non-empty ``R``."""
    return float(_per_user(recommended, relevant, k)[f"precision@{k}"].mean())


def f1_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: int = 10) -> float:
    """Mean of the per-user harmonic mean of precision@k and recall@k."""
    return float(_per_user(recommended, relevant, k)[f"f1@{k}"].mean())


def ndcg_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: int = 10) -> float:
    """Mean NDCG@k with binary relevance, log2 discount and IDCG over ``min(k, |R|)``."""
    return float(_per_user(recommended, relevant, k)[f"ndcg@{k}"].mean())

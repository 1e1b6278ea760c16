"""Offline evaluation: the model against the popularity baseline on the held-out split.

The baseline recommends the most-trained items the user has not interacted with
in training — the same history exclusion the model applies — so the comparison
is fair. Both are scored with :func:`~chaosrec.model.metrics.metrics_at_k`.

Example::

    >>> result = evaluate(ensure_model(), generate_catalog())  # doctest: +SKIP
    >>> result["model"]["recall@10"] > 1.5 * result["popularity"]["recall@10"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from chaosrec.errors import ModelError
from chaosrec.model._validation import check_int
from chaosrec.model.catalog import Catalog
from chaosrec.model.metrics import metrics_at_k

if TYPE_CHECKING:
    pass

__all__ = ["evaluate", "popularity_recommendations", "recommend"]

IntArray = npt.NDArray[np.int64]


Recommender = Callable[..., Any]


def _as_callable(source: object) -> Recommender:
    """A callable ``user_ids -> (items, scores)`` from an artifact, a TrainedModel or a module."""
    if hasattr(source, "load_module"):
        return source.load_module()  # type: ignore[no-any-return]
    if hasattr(source, "module"):
        return source.module  # type: ignore[no-any-return]
    if callable(source):
        return source
    raise ModelError(
        f"Cannot evaluate {type(source).__name__}; expected a ModelArtifact, a TrainedModel "
        "or a torch module mapping user ids to (item_ids, scores)"
    )


def recommend(
    source: object, user_ids: npt.ArrayLike, *, batch_size: int = 256
) -> tuple[IntArray, npt.NDArray[np.float32]]:
    """Run a model on ``user_ids`` in batches; return ``(items [N, top_k], scores [N, top_k])``.

    ``source`` is a :class:`~chaosrec.model.artifacts.ModelArtifact`, a
    :class:`~chaosrec.model.train.TrainedModel` or a (scripted) serving module.
    """
    import torch

    check_int("batch_size", batch_size, minimum=1)
    model = _as_callable(source)
    ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
    items_out: list[IntArray] = []
    scores_out: list[npt.NDArray[np.float32]] = []
    with torch.inference_mode():
        for start in range(0, ids.size, batch_size):
            batch = torch.from_numpy(ids[start : start + batch_size].copy())
            items, scores = model(batch)
            items_out.append(items.cpu().numpy().astype(np.int64))
            scores_out.append(scores.cpu().numpy().astype(np.float32))
    if not items_out:
        return np.empty((0, 0), dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    return np.concatenate(items_out), np.concatenate(scores_out)


def popularity_recommendations(catalog: Catalog, user_ids: npt.ArrayLike, n: int) -> IntArray:
    """The ``n`` most-trained items per user, excluding that user's training items.

    Returns int64 ``[len(user_ids), n]``.
    """
    check_int("n", n, minimum=1)
    users = np.asarray(user_ids, dtype=np.int64).reshape(-1)
    longest = int(catalog.train.lengths().max(initial=0))
    pool = catalog.popularity_ranking()[: n + longest]
    history = catalog.train.take(users)
    span = np.int64(catalog.n_items)
    seen = np.repeat(np.arange(users.size, dtype=np.int64), history.lengths()) * span
    seen += history.indices
    keys = np.arange(users.size, dtype=np.int64)[:, None] * span + pool[None, :]
    fresh = ~np.isin(keys, seen)
    # Stable sort on "already seen" keeps popularity order among the fresh items.
    order = np.argsort(~fresh, axis=1, kind="stable")[:, :n]
    recommended: IntArray = pool[order].astype(np.int64)
    return recommended


def evaluate(
    artifact_or_module: object,
    catalog: Catalog,
    k: int = 10,
    *,
    user_ids: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Metrics@k of the model and of the popularity baseline on the held-out split.

    Args:
        artifact_or_module: a ``ModelArtifact``, a ``TrainedModel`` or a serving module.
        catalog: the catalog the model was trained on.
        k: cut-off (1 <= k <= the model's top_k).
        user_ids: users to evaluate; all users if ``None``.

    Returns:
        ``{"k", "n_users", "model": {...}, "popularity": {...}, "recall_lift"}``
        where each metrics dict has ``recall@k``, ``ndcg@k``, ``precision@k``,
        ``f1@k`` and ``recall_lift`` is model recall / popularity recall.
    """
    check_int("k", k, minimum=1)
    users = np.arange(catalog.n_users) if user_ids is None else np.asarray(user_ids, np.int64)
    relevant = catalog.test.take(users)
    items, _ = recommend(artifact_or_module, users)
    if items.shape[1] < k:
        raise ModelError(f"Cannot evaluate at k={k}: the model returns only {items.shape[1]}")
    model = metrics_at_k(items, relevant, k)
    popularity = metrics_at_k(popularity_recommendations(catalog, users, k), relevant, k)
    baseline = popularity[f"recall@{k}"]
    lift = model[f"recall@{k}"] / baseline if baseline > 0 else float("inf")
    return {
        "k": k,
        "n_users": int(users.size),
        "model": model,
        "popularity": popularity,
        "recall_lift": lift,
    }

"""The serving module: retrieval, history exclusion and re-ranking in one TorchScript graph.

``RecommenderModule.forward(user_ids)`` takes int64 user ids shaped ``[B]`` or
``[B, 1]`` (Triton sends ``[B, 1]``) and returns ``(item_ids, scores)``:

* ``item_ids``: int64 ``[B, top_k]`` (``top_k = 50``), best first;
* ``scores``: float32 ``[B, top_k]``, the ranker's logits (descending).

Per known user: dot-product retrieval of the ``retrieve_k`` (200) best items
over precomputed two-tower vectors, the user's training history masked out, the
candidates re-scored by the ranker MLP, and the ``top_k`` best returned.

**Unknown users** (``id < 0`` or ``id >= n_users``) never raise: they get the
popularity fallback, the ``top_k`` most-trained items with score
``log1p(training count)``. The module holds every tensor it needs as buffers,
so ``torch.jit.load`` runs it without any chaosrec code.
"""

# No `from __future__ import annotations`: TorchScript must see real annotations.
import math

import torch
from torch import Tensor, nn

__all__ = [
    "N_RANKER_FEATURES",
    "RankerMLP",
    "RecommenderModule",
    "grouped_topk",
    "ranker_features",
]

_GROUPS = 8

N_RANKER_FEATURES = 5
"""dot, per-user z-scored dot, log rank, category share, normalised log popularity."""


def ranker_features(
    candidate_ids: Tensor,
    dot_scores: Tensor,
    category_share: Tensor,
    item_category: Tensor,
    item_log_popularity: Tensor,
) -> Tensor:
    """Ranker inputs ``[B, K, 5]`` for ``K`` retrieved candidates per user, best first.

    Args:
        candidate_ids: int64 ``[B, K]``, retrieved items in retrieval order.
        dot_scores: float32 ``[B, K]``, their two-tower scores (descending).
        category_share: float32 ``[B, n_categories]``, each user's share of
            training interactions per category (rows sum to 1, or 0 without history).
        item_category: int64 ``[n_items]``.
        item_log_popularity: float32 ``[n_items]``, ``log1p(count) / log1p(max count)``.
    """
    mean = dot_scores.mean(dim=1, keepdim=True)
    std = dot_scores.std(dim=1, keepdim=True).clamp_min(1e-6)
    n_candidates = dot_scores.shape[1]
    positions = torch.arange(n_candidates, device=dot_scores.device, dtype=dot_scores.dtype)
    log_rank = torch.log1p(positions) / math.log1p(float(n_candidates))
    share = category_share.gather(1, item_category[candidate_ids])
    return torch.stack(
        [
            dot_scores,
            (dot_scores - mean) / std,
            log_rank.unsqueeze(0).expand_as(dot_scores),
            share,
            item_log_popularity[candidate_ids],
        ],
        dim=-1,
    )


def grouped_topk(scores: Tensor, k: int, groups: int) -> tuple[Tensor, Tensor]:
    """Exactly ``torch.topk(scores, k, dim=1)`` (sorted), about twice as fast on CPU for k << n.

    Column ``c`` of ``scores [B, n]`` (``n`` divisible by ``groups``) belongs to
    group ``c % (n // groups)``. Every top-``k`` element lies in one of the ``k``
    groups with the largest maxima (an element outside them is beaten by ``k``
    group maxima), so one cheap max over groups, a top-``k`` over group maxima
    and a top-``k`` over the ``k · groups`` surviving columns give the answer.
    Falls back to ``torch.topk`` when there are no more than ``k`` groups.
    """
    batch, n_cols = scores.shape
    per_group = n_cols // groups
    if per_group <= k or per_group * groups != n_cols:
        values, indices = torch.topk(scores, k, dim=1)
        return values, indices
    strided = scores.view(batch, groups, per_group)
    best = torch.topk(strided.amax(dim=1), k, dim=1, sorted=False).indices
    survivors = strided.gather(2, best.unsqueeze(1).expand(batch, groups, k))
    values, position = torch.topk(survivors.reshape(batch, groups * k), k, dim=1)
    row = torch.div(position, k, rounding_mode="floor")
    return values, row * per_group + best.gather(1, position % k)


class RankerMLP(nn.Module):
    """``features [..., n_in] -> scores [..., 1]``: two ReLU hidden layers of width ``hidden``.

    Written with raw parameters rather than ``nn.Linear``: TorchScript prints
    ``nn.Linear``'s ``__constants__`` set in hash-seed-dependent order, which
    would make ``model.pt`` (and so the artifact version) differ between runs.
    Initialised like ``nn.Linear`` (from torch's global RNG).
    """

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.weight_1 = nn.Parameter(torch.empty(hidden, n_in))
        self.bias_1 = nn.Parameter(torch.empty(hidden))
        self.weight_2 = nn.Parameter(torch.empty(hidden, hidden))
        self.bias_2 = nn.Parameter(torch.empty(hidden))
        self.weight_3 = nn.Parameter(torch.empty(1, hidden))
        self.bias_3 = nn.Parameter(torch.empty(1))
        for weight, bias in (
            (self.weight_1, self.bias_1),
            (self.weight_2, self.bias_2),
            (self.weight_3, self.bias_3),
        ):
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            bound = 1.0 / math.sqrt(weight.shape[1])
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, features: Tensor) -> Tensor:
        """Scores ``[..., 1]`` for ``features [..., n_in]``."""
        hidden = torch.relu(nn.functional.linear(features, self.weight_1, self.bias_1))
        hidden = torch.relu(nn.functional.linear(hidden, self.weight_2, self.bias_2))
        return nn.functional.linear(hidden, self.weight_3, self.bias_3)


class RecommenderModule(nn.Module):
    """Two-tower retrieval + MLP re-ranking over baked-in tensors (TorchScript-able).

    Args:
        user_vectors: float32 ``[n_users, D]``, the user tower's output for each
            user's full training history (a trailing 1 multiplies the item bias).
        item_vectors: float32 ``[n_items, D]``, the item tower's output (trailing bias).
        history: int64 ``[n_users, L]``, each user's training items padded with
            ``n_items`` (the history as a padded CSR); these items are never returned.
        item_category: int64 ``[n_items]``.
        category_share: float32 ``[n_users, n_categories]`` (see :func:`ranker_features`).
        item_log_popularity: float32 ``[n_items]`` (see :func:`ranker_features`).
        ranker: maps ``[..., 5]`` features to ``[..., 1]`` scores.
        popular_items: int64 ``[top_k]``, the fallback list for unknown users.
        popular_scores: float32 ``[top_k]``, its scores.
        retrieve_k: candidates retrieved before re-ranking (>= top_k).
    """

    n_users: int
    n_items: int
    retrieve_k: int
    top_k: int
    groups: int
    user_vectors: Tensor
    item_vectors_t: Tensor
    history: Tensor
    item_category: Tensor
    category_share: Tensor
    item_log_popularity: Tensor
    popular_items: Tensor
    popular_scores: Tensor

    def __init__(
        self,
        *,
        user_vectors: Tensor,
        item_vectors: Tensor,
        history: Tensor,
        item_category: Tensor,
        category_share: Tensor,
        item_log_popularity: Tensor,
        ranker: RankerMLP,
        popular_items: Tensor,
        popular_scores: Tensor,
        retrieve_k: int = 200,
    ) -> None:
        super().__init__()
        self.n_users = int(user_vectors.shape[0])
        self.n_items = int(item_vectors.shape[0])
        self.retrieve_k = int(retrieve_k)
        self.top_k = int(popular_items.shape[0])
        self.groups = _GROUPS
        # Columns: the items, then >= 1 padding column (absorbing the history padding
        # n_items) up to a multiple of _GROUPS for grouped_topk. Padding scores -inf.
        n_columns = -(-(self.n_items + 1) // _GROUPS) * _GROUPS
        padding = torch.zeros(n_columns - self.n_items, item_vectors.shape[1])
        self.register_buffer("user_vectors", user_vectors.float().contiguous())
        self.register_buffer(
            "item_vectors_t", torch.cat([item_vectors.float(), padding]).t().contiguous()
        )
        self.register_buffer("history", history.long().contiguous())
        self.register_buffer("item_category", item_category.long().contiguous())
        self.register_buffer("category_share", category_share.float().contiguous())
        self.register_buffer("item_log_popularity", item_log_popularity.float().contiguous())
        self.register_buffer("popular_items", popular_items.long().contiguous())
        self.register_buffer("popular_scores", popular_scores.float().contiguous())
        self.ranker = ranker

    def forward(self, user_ids: Tensor) -> tuple[Tensor, Tensor]:
        """Top ``top_k`` items and scores for ``user_ids`` (``[B]`` or ``[B, 1]``)."""
        device = self.user_vectors.device
        ids = user_ids.reshape(-1).to(device=device, dtype=torch.long)
        if ids.shape[0] == 0:
            nothing = torch.zeros(0, self.top_k, device=device)
            return nothing.to(torch.long), nothing
        known = (ids >= 0) & (ids < self.n_users)
        safe = torch.where(known, ids, torch.zeros_like(ids))

        scores = torch.mm(self.user_vectors[safe], self.item_vectors_t)
        scores[:, self.n_items :] = float("-inf")  # padding columns
        scores.scatter_(1, self.history[safe], float("-inf"))
        dots, candidates = grouped_topk(scores, self.retrieve_k, self.groups)

        features = ranker_features(
            candidates,
            dots,
            self.category_share[safe],
            self.item_category,
            self.item_log_popularity,
        )
        ranked = self.ranker(features).squeeze(-1)
        best_scores, order = torch.topk(ranked, self.top_k, dim=1)
        best_items = candidates.gather(1, order)

        fallback = ~known.unsqueeze(1)
        batch = ids.shape[0]
        items = torch.where(fallback, self.popular_items.expand(batch, self.top_k), best_items)
        values = torch.where(fallback, self.popular_scores.expand(batch, self.top_k), best_scores)
        return items, values.to(torch.float32)

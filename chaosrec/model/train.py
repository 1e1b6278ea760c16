"""Training of the reference recommender (imports torch; import it lazily).

Pipeline for ``variant="good"`` (about 10-15 s on 2 CPU cores):

1. **Two-tower retrieval.** User tower: user-id embedding + mean of the user's
   history-item embeddings. Item tower: item-id embedding + category embedding,
   plus a per-item bias. Trained with Adam on a full-softmax multinomial loss
   over all items: each step keeps a random ``history_keep`` share of every
   user's history as tower input and asks the model to find the rest (the kept
   items are masked out of the softmax, as history is masked at serving time).
2. **Ranker.** The towers are first trained on all but the latest
   ``ranker_holdout_fraction`` of each user's training items; the ranker, an MLP
   over :func:`~chaosrec.model.serving.ranker_features`, then learns to put those
   held-out items (positives) above the other top ``ranker_candidates`` retrieved
   items (hard negatives) with a listwise softmax loss. The towers never saw the
   held-out items, so the ranker sees honest retrieval scores.
3. **Refit.** The towers train ``refit_epochs`` more on the whole training history.

``variant="bad"`` stops the towers after ``bad_steps`` steps (a fraction of an
epoch), adds noise to the item vectors and ships an untrained ranker.

Everything is seeded (``torch.Generator`` for batches and masks, a forked global
RNG for initialisation); on CPU ``torch.use_deterministic_algorithms`` is on and
the thread count fixed, so a seed gives bit-identical weights on one machine.
Across machines the bits also depend on the CPU kernels torch and MKL pick;
:func:`~chaosrec.model.ensure_model` pins those by training in a child process
(:mod:`chaosrec.model._pinned`). Global torch state (RNG, threads, determinism
flag) is restored afterwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from chaosrec.errors import ConfigError, ModelError
from chaosrec.model._csr import CSR
from chaosrec.model._validation import check_choice
from chaosrec.model.catalog import Catalog
from chaosrec.model.config import VARIANTS, TrainConfig
from chaosrec.model.serving import (
    N_RANKER_FEATURES,
    RankerMLP,
    RecommenderModule,
    ranker_features,
)

__all__ = ["TrainedModel", "pick_device", "train_model"]

_MASKED = -1e4  # logit of items excluded from the softmax; finite so 0 · logp stays 0


def pick_device() -> torch.device:
    """``cuda`` when ``torch.cuda.is_available()``, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """The outcome of :func:`train_model`.

    Attributes:
        module: the serving module, on CPU and in eval mode (script it to export).
        variant: ``"good"`` or ``"bad"``.
        seed: the training seed.
        device: the device it was trained on (``"cpu"`` or ``"cuda"``).
        train_seconds: wall-clock training time in seconds (catalog excluded).
        config: the hyper-parameters used.
    """

    module: RecommenderModule
    variant: str
    seed: int
    device: str
    train_seconds: float
    config: TrainConfig


class _TwoTower(nn.Module):
    item_category: Tensor

    def __init__(self, n_users: int, n_items: int, item_category: Tensor, dim: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.user_embedding = nn.Embedding(n_users, dim)
        self.history_embedding = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.item_embedding = nn.Embedding(n_items, dim)
        n_categories = int(item_category.max()) + 1
        self.category_embedding = nn.Embedding(n_categories, dim)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("item_category", item_category)
        for table in (
            self.user_embedding,
            self.history_embedding,
            self.item_embedding,
            self.category_embedding,
        ):
            nn.init.normal_(table.weight, std=0.05)
        with torch.no_grad():
            self.history_embedding.weight[n_items].zero_()

    def users(self, user_ids: Tensor, history: Tensor) -> Tensor:
        """``[B, dim]`` from ids and padded histories (padding = ``n_items``)."""
        count = (history < self.n_items).sum(dim=1).clamp_min(1).unsqueeze(1)
        pooled: Tensor = self.history_embedding(history).sum(dim=1) / count
        by_id: Tensor = self.user_embedding(user_ids)
        return by_id + pooled

    def items(self) -> tuple[Tensor, Tensor]:
        """``([n_items + 1, dim], [n_items + 1])``: vectors and biases, last row masked."""
        vectors = self.item_embedding.weight + self.category_embedding(self.item_category)
        pad_vector = vectors.new_zeros(1, vectors.shape[1])
        pad_bias = self.item_bias.new_full((1,), _MASKED)
        return torch.cat([vectors, pad_vector]), torch.cat([self.item_bias, pad_bias])


@contextmanager
def _training_context(seed: int, device: torch.device, num_threads: int) -> Iterator[None]:
    """Seed and pin torch's global state for training; restore it on exit."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        torch.set_num_threads(num_threads)
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)


def _padded(csr: CSR, pad: int) -> npt.NDArray[np.int64]:
    """Rows of ``csr`` as ``[n_rows, max_len]``, right-padded with ``pad``."""
    lengths = csr.lengths()
    width = max(int(lengths.max(initial=0)), 1)
    out = np.full((csr.n_rows, width), pad, dtype=np.int64)
    rows = np.repeat(np.arange(csr.n_rows), lengths)
    cols = np.arange(csr.indices.size) - np.repeat(csr.indptr[:-1], lengths)
    out[rows, cols] = csr.indices
    return out


def _split_history(csr: CSR, fraction: float) -> tuple[CSR, CSR]:
    """Per row: (all but the latest ``fraction``, the latest ``fraction``); >= 1 item each."""
    lengths = csr.lengths()
    tail = np.minimum(np.maximum(1, np.rint(lengths * fraction)), lengths - 1).astype(np.int64)
    tail = np.maximum(tail, 0)
    position = np.arange(csr.indices.size) - np.repeat(csr.indptr[:-1], lengths)
    in_tail = position >= np.repeat(lengths - tail, lengths)

    def build(mask: npt.NDArray[np.bool_], row_lengths: npt.NDArray[np.int64]) -> CSR:
        indptr = np.zeros(csr.n_rows + 1, dtype=np.int64)
        np.cumsum(row_lengths, out=indptr[1:])
        return CSR(indptr, csr.indices[mask].astype(np.int64))

    return build(~in_tail, lengths - tail), build(in_tail, tail)


def _category_share(history: Tensor, item_category: Tensor, n_items: int, n_cat: int) -> Tensor:
    """``[n_users, n_categories]`` share of each user's history per category."""
    valid = history < n_items
    categories = item_category[history.clamp_max(n_items - 1)]
    counts = torch.zeros(history.shape[0], n_cat, device=history.device)
    counts.scatter_add_(1, categories, valid.float())
    return counts / counts.sum(dim=1, keepdim=True).clamp_min(1.0)


def _train_towers(
    towers: _TwoTower,
    optimizer: torch.optim.Optimizer,
    history: Tensor,
    *,
    steps: int,
    config: TrainConfig,
    generator: torch.Generator,
) -> float:
    """Run ``steps`` multinomial-loss steps over shuffled user batches; return the last loss."""
    n_users, n_items = history.shape[0], towers.n_items
    device = history.device
    loss_value = float("nan")
    order = torch.empty(0, dtype=torch.long, device=device)
    cursor = 0
    for _ in range(steps):
        if cursor >= order.numel():
            order = torch.randperm(n_users, generator=generator, device=device)
            cursor = 0
        users = order[cursor : cursor + config.batch_users]
        cursor += config.batch_users
        rows = history[users]
        valid = rows < n_items
        draw = torch.rand(rows.shape, generator=generator, device=device)
        keep = (draw < config.history_keep) & valid
        inputs = torch.where(keep, rows, n_items)
        targets = torch.where(valid & ~keep, rows, n_items)

        vectors, bias = towers.items()
        logits = torch.addmm(bias, towers.users(users, inputs), vectors.T)
        logits.scatter_(1, inputs, _MASKED)
        log_prob = torch.log_softmax(logits, dim=1)
        wanted = (targets < n_items).float()
        picked = log_prob.gather(1, targets) * wanted
        loss = -(picked.sum(dim=1) / wanted.sum(dim=1).clamp_min(1.0)).mean()

        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        loss_value = _check_finite(float(loss.detach()), "Two-tower")
    return loss_value


@torch.no_grad()
def _retrieve(towers: _TwoTower, history: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-``k`` (scores, items) per user with their ``history`` masked out."""
    n_users = history.shape[0]
    user_ids = torch.arange(n_users, device=history.device)
    vectors, bias = towers.items()
    scores_out, items_out = [], []
    for start in range(0, n_users, 1024):
        rows = slice(start, start + 1024)
        scores = towers.users(user_ids[rows], history[rows]) @ vectors.T + bias
        scores = scores.scatter(1, history[rows], float("-inf"))[:, : towers.n_items]
        top = torch.topk(scores, k, dim=1)
        scores_out.append(top.values)
        items_out.append(top.indices)
    return torch.cat(scores_out), torch.cat(items_out)


def _train_ranker(
    ranker: RankerMLP,
    features: Tensor,
    labels: Tensor,
    *,
    config: TrainConfig,
    generator: torch.Generator,
) -> float:
    """Listwise softmax loss over each user's candidates; return the last loss."""
    has_positive = labels.sum(dim=1) > 0
    features, labels = features[has_positive], labels[has_positive]
    optimizer = torch.optim.Adam(ranker.parameters(), lr=config.ranker_learning_rate)
    n_rows = features.shape[0]
    loss_value = float("nan")
    for _ in range(config.ranker_epochs):
        order = torch.randperm(n_rows, generator=generator, device=features.device)
        for start in range(0, n_rows, config.ranker_batch_users):
            batch = order[start : start + config.ranker_batch_users]
            logits = ranker(features[batch]).squeeze(-1)
            wanted = labels[batch]
            log_prob = torch.log_softmax(logits, dim=1)
            loss = -((log_prob * wanted).sum(dim=1) / wanted.sum(dim=1)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            loss_value = _check_finite(float(loss.detach()), "Ranker")
    return loss_value


def _check_sizes(catalog: Catalog, history: npt.NDArray[np.int64], config: TrainConfig) -> None:
    longest = int((history < catalog.n_items).sum(axis=1).max(initial=0))
    if catalog.n_items - longest < config.retrieve_k:
        raise ConfigError(
            f"retrieve_k={config.retrieve_k} must be <= {catalog.n_items - longest}: the catalog "
            f"has n_items={catalog.n_items} and its longest training history is {longest}"
        )


def train_model(
    catalog: Catalog,
    variant: str = "good",
    *,
    config: TrainConfig | None = None,
    device: torch.device | str | None = None,
) -> TrainedModel:
    """Train the reference recommender on ``catalog`` (seeded by ``catalog.seed``).

    Args:
        catalog: the dataset; only its training split is used.
        variant: ``"good"`` or ``"bad"`` (see :mod:`chaosrec.model.train`).
        config: hyper-parameters; :class:`TrainConfig` defaults if ``None``.
        device: where to train; :func:`pick_device` if ``None``.

    Returns:
        A :class:`TrainedModel` whose ``module`` lives on CPU.

    Raises:
        ConfigError: an unknown variant, or a catalog too small for ``retrieve_k``.
        ModelError: training diverged (non-finite loss).
    """
    check_choice("variant", variant, VARIANTS)
    config = config or TrainConfig()
    target = torch.device(device) if device is not None else pick_device()
    full_history_np = _padded(catalog.train, catalog.n_items)
    _check_sizes(catalog, full_history_np, config)
    started = time.perf_counter()
    with _training_context(catalog.seed, target, config.num_threads):
        module = _train(catalog, variant, config, target, full_history_np)
    return TrainedModel(
        module=module,
        variant=variant,
        seed=catalog.seed,
        device=target.type,
        train_seconds=time.perf_counter() - started,
        config=config,
    )


def _check_finite(loss: float, what: str) -> float:
    if not math.isfinite(loss):
        raise ModelError(
            f"{what} training diverged (loss={loss}); lower its learning rate in TrainConfig"
        )
    return loss


def _train(
    catalog: Catalog,
    variant: str,
    config: TrainConfig,
    device: torch.device,
    full_history_np: npt.NDArray[np.int64],
) -> RecommenderModule:
    n_users, n_items = catalog.n_users, catalog.n_items
    generator = torch.Generator(device=device).manual_seed(catalog.seed)
    item_category = torch.as_tensor(np.array(catalog.item_category), device=device)
    counts = torch.as_tensor(catalog.train_item_counts(), device=device, dtype=torch.float32)
    log_popularity = torch.log1p(counts) / torch.log1p(counts.max()).clamp_min(1e-6)
    full_history = torch.as_tensor(full_history_np, device=device)

    towers = _TwoTower(n_users, n_items, item_category, config.dim).to(device)
    optimizer = torch.optim.Adam(towers.parameters(), lr=config.learning_rate)
    ranker = RankerMLP(N_RANKER_FEATURES, config.ranker_hidden).to(device)
    steps_per_epoch = -(-n_users // config.batch_users)

    if variant == "bad":
        _train_towers(
            towers,
            optimizer,
            full_history,
            steps=config.bad_steps,
            config=config,
            generator=generator,
        )
    else:
        early, late = _split_history(catalog.train, config.ranker_holdout_fraction)
        early_history = torch.as_tensor(_padded(early, n_items), device=device)
        late_history = torch.as_tensor(_padded(late, n_items), device=device)
        _train_towers(
            towers,
            optimizer,
            early_history,
            steps=config.holdout_epochs * steps_per_epoch,
            config=config,
            generator=generator,
        )
        dots, candidates = _retrieve(towers, early_history, config.retrieve_k)
        share = _category_share(early_history, item_category, n_items, catalog.n_categories)
        features = ranker_features(candidates, dots, share, item_category, log_popularity)
        is_late = torch.zeros(n_users, n_items + 1, device=device)
        is_late.scatter_(1, late_history, 1.0)
        labels = is_late[:, :n_items].gather(1, candidates)
        keep = config.ranker_candidates
        _train_ranker(
            ranker, features[:, :keep], labels[:, :keep], config=config, generator=generator
        )
        _train_towers(
            towers,
            optimizer,
            full_history,
            steps=config.refit_epochs * steps_per_epoch,
            config=config,
            generator=generator,
        )
    return _export(
        towers, ranker, catalog, config, variant, full_history, log_popularity, counts, generator
    )


@torch.no_grad()
def _export(
    towers: _TwoTower,
    ranker: RankerMLP,
    catalog: Catalog,
    config: TrainConfig,
    variant: str,
    full_history: Tensor,
    log_popularity: Tensor,
    counts: Tensor,
    generator: torch.Generator,
) -> RecommenderModule:
    """Freeze the towers into vectors and assemble the CPU serving module."""
    n_users, n_items = catalog.n_users, catalog.n_items
    towers.eval()
    ranker.eval()
    user_ids = torch.arange(n_users, device=full_history.device)
    users = torch.cat(
        [
            towers.users(user_ids[s : s + 1024], full_history[s : s + 1024])
            for s in range(0, n_users, 1024)
        ]
    )
    vectors, bias = towers.items()
    items, bias = vectors[:n_items], bias[:n_items]
    if variant == "bad":
        noise = torch.randn(items.shape, generator=generator, device=items.device)
        items = items + config.bad_noise * items.std() * noise
    ones = users.new_ones(n_users, 1)
    share = _category_share(full_history, towers.item_category, n_items, catalog.n_categories)
    popular = torch.as_tensor(catalog.popularity_ranking()[: config.top_k].copy())
    return RecommenderModule(
        user_vectors=torch.cat([users, ones], dim=1).cpu(),
        item_vectors=torch.cat([items, bias.unsqueeze(1)], dim=1).cpu(),
        history=full_history.cpu(),
        item_category=towers.item_category.cpu(),
        category_share=share.cpu(),
        item_log_popularity=log_popularity.cpu(),
        ranker=ranker.cpu(),
        popular_items=popular,
        popular_scores=torch.log1p(counts.cpu()[popular]),
        retrieve_k=config.retrieve_k,
    ).eval()

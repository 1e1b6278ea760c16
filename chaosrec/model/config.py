"""Hyper-parameters of the reference recommender (no torch import here).

The artifact cache key hashes :data:`TRAINING_CODE_VERSION`, the seed, the
variant, the catalog sizes and :class:`TrainConfig`; bump the version whenever a
change to the training or serving code changes the trained bytes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final, Literal

from chaosrec.model._validation import check_int, check_open_fraction, check_positive

__all__ = ["REFERENCE_RECALL_AT_10", "TRAINING_CODE_VERSION", "VARIANTS", "TrainConfig", "Variant"]

TRAINING_CODE_VERSION: Final = "2026.12-1"  # 2026.12: trained in a pinned child process

REFERENCE_RECALL_AT_10: Final = (0.085, 0.115)
"""The band the good reference model's recall@10 (all 5,000 users) falls in on any
machine. Measured 0.0991-0.0993 under every ATen CPU capability and MKL path of one
AVX512 machine before training was pinned; the band leaves room for another torch
release, which may change the trained bits."""

Variant = Literal["good", "bad"]
VARIANTS: Final[tuple[Variant, ...]] = ("good", "bad")
"""``good``: the reference model. ``bad``: a deliberately broken release for
the "bad model version goes live" drill (under-trained towers with noised item
vectors and an untrained, randomly initialised ranker)."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; the defaults train in ~10-15 s on 2 CPU cores.

    Attributes:
        dim: embedding width of both towers.
        batch_users: users per two-tower step (multinomial loss over all items).
        learning_rate: Adam learning rate of the towers.
        history_keep: share of a user's history fed to the user tower per step;
            the model learns to predict the rest (denoising, so it generalises to
            items the user has not seen yet).
        holdout_epochs: tower epochs on the first part of each history, before
            the ranker is fitted on the held-out last part.
        refit_epochs: further tower epochs on the whole training history.
        ranker_holdout_fraction: share of each user's latest training items the
            ranker learns to find.
        ranker_candidates: retrieval positions the ranker trains on (positives
            versus hard negatives among them).
        ranker_hidden: width of the ranker's two hidden layers.
        ranker_epochs: ranker epochs (listwise softmax loss).
        ranker_batch_users: users per ranker step.
        ranker_learning_rate: Adam learning rate of the ranker.
        retrieve_k: candidates the served module retrieves before re-ranking.
        top_k: items the served module returns.
        num_threads: torch intra-op threads while training (restored afterwards).
        bad_steps: tower steps of the ``bad`` variant (a fraction of one epoch).
        bad_noise: std of the Gaussian noise added to the ``bad`` item vectors,
            relative to their own std.
    """

    dim: int = 64
    batch_users: int = 256
    learning_rate: float = 5e-3
    history_keep: float = 0.5
    holdout_epochs: int = 6
    refit_epochs: int = 3
    ranker_holdout_fraction: float = 0.2
    ranker_candidates: int = 100
    ranker_hidden: int = 32
    ranker_epochs: int = 25
    ranker_batch_users: int = 512
    ranker_learning_rate: float = 3e-3
    retrieve_k: int = 200
    top_k: int = 50
    num_threads: int = 2
    bad_steps: int = 4
    bad_noise: float = 1.0

    def __post_init__(self) -> None:
        for name in ("dim", "batch_users", "ranker_candidates", "ranker_hidden", "top_k"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("holdout_epochs", "refit_epochs", "ranker_epochs", "bad_steps"):
            check_int(name, getattr(self, name), minimum=0)
        check_int("ranker_batch_users", self.ranker_batch_users, minimum=1)
        check_int("num_threads", self.num_threads, minimum=1)
        check_int("retrieve_k", self.retrieve_k, minimum=max(self.top_k, self.ranker_candidates))
        check_open_fraction("history_keep", self.history_keep)
        check_open_fraction("ranker_holdout_fraction", self.ranker_holdout_fraction)
        check_positive("learning_rate", self.learning_rate)
        check_positive("ranker_learning_rate", self.ranker_learning_rate)
        check_positive("bad_noise", self.bad_noise)

    def as_dict(self) -> dict[str, int | float]:
        """The fields as a plain dict (for hashing and ``meta.json``)."""
        return dataclasses.asdict(self)

"""The reference recommender: synthetic catalog, two-tower + ranker model, cached artifacts.

``import chaosrec.model`` stays light (numpy only). The names that need torch —
:func:`train_model`, :func:`pick_device`, :class:`TrainedModel`,
:class:`RecommenderModule` — are imported on first access; so is torch inside
:func:`ensure_model`, :func:`evaluate` and :func:`export_triton_repository`.

Example::

    >>> from chaosrec.model import ensure_model
    >>> artifact = ensure_model("good")            # doctest: +SKIP
    >>> artifact.version, artifact.model_file      # doctest: +SKIP
    ('3f1c...', PosixPath('.../models/good-seed7-.../model.pt'))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosrec.core.lazy import lazy_attributes
from chaosrec.model._csr import CSR
from chaosrec.model.artifacts import (
    TRITON_TENSOR_NAMES,
    GoldenSet,
    ModelArtifact,
    cache_key,
    default_cache_dir,
    ensure_model,
    export_triton_repository,
    golden_user_ids,
    load_artifact,
    save_artifact,
)
from chaosrec.model.catalog import Catalog, generate_catalog
from chaosrec.model.config import (
    REFERENCE_RECALL_AT_10,
    TRAINING_CODE_VERSION,
    VARIANTS,
    TrainConfig,
)
from chaosrec.model.evaluate import evaluate, popularity_recommendations, recommend
from chaosrec.model.metrics import (
    f1_at_k,
    metrics_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

if TYPE_CHECKING:
    from chaosrec.model.serving import RecommenderModule
    from chaosrec.model.train import TrainedModel, pick_device, train_model

__all__ = [
    "CSR",
    "REFERENCE_RECALL_AT_10",
    "TRAINING_CODE_VERSION",
    "TRITON_TENSOR_NAMES",
    "VARIANTS",
    "Catalog",
    "GoldenSet",
    "ModelArtifact",
    "RecommenderModule",
    "TrainConfig",
    "TrainedModel",
    "cache_key",
    "default_cache_dir",
    "ensure_model",
    "evaluate",
    "export_triton_repository",
    "f1_at_k",
    "generate_catalog",
    "golden_user_ids",
    "load_artifact",
    "metrics_at_k",
    "ndcg_at_k",
    "pick_device",
    "popularity_recommendations",
    "precision_at_k",
    "recall_at_k",
    "recommend",
    "save_artifact",
    "train_model",
]

_LAZY = {
    "RecommenderModule": "chaosrec.model.serving",
    "TrainedModel": "chaosrec.model.train",
    "pick_device": "chaosrec.model.train",
    "train_model": "chaosrec.model.train",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)

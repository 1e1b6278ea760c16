"""Cached, content-versioned model artifacts and their Triton export.

Layout (``cache_dir`` defaults to ``$CHAOSREC_CACHE_DIR/models``, else
``platformdirs.user_cache_dir("chaosrec")/models``)::

    <cache_dir>/
      good-seed7-<key16>/        one artifact; <key16> = cache key (see below)
        model.pt                 TorchScript serving module (canonical bytes)
        meta.json                version, sha256, variant, seed, sizes, metrics, ...
        popularity.json          {"item_ids": [...100], "train_counts": [...100]}
        golden.json              500 users with held-out items and expected top-10
      .good-seed7-<key16>.lock   serialises training across processes

The **cache key** is a sha256 over :data:`~chaosrec.model.config.TRAINING_CODE_VERSION`,
the seed, the variant, the catalog sizes and every :class:`TrainConfig` field. The
artifact **version** is the first 12 hex digits of the sha256 of ``model.pt``.

An artifact is built in a temporary sibling folder and renamed into place, so
readers never see a partial one; a file lock makes concurrent processes (e.g.
pytest-xdist workers) wait for one training instead of each training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from chaosrec.core.paths import cache_dir as _cache_root
from chaosrec.errors import ConfigError, ModelError
from chaosrec.model._validation import check_choice, check_int
from chaosrec.model.catalog import DEFAULT_N_ITEMS, DEFAULT_N_USERS, Catalog
from chaosrec.model.config import TRAINING_CODE_VERSION, VARIANTS, TrainConfig
from chaosrec.model.metrics import metrics_at_k

if TYPE_CHECKING:
    import torch

    from chaosrec.model.train import TrainedModel

__all__ = [
    "TRITON_TENSOR_NAMES",
    "GoldenSet",
    "ModelArtifact",
    "cache_key",
    "default_cache_dir",
    "ensure_model",
    "export_triton_repository",
    "golden_user_ids",
    "load_artifact",
    "save_artifact",
]

GOLDEN_USERS = 500
POPULARITY_ITEMS = 100
_LOCK_TIMEOUT_S = 900.0

TRITON_TENSOR_NAMES: Mapping[str, str] = {
    "USER_ID": "INPUT__0",
    "ITEM_IDS": "OUTPUT__0",
    "SCORES": "OUTPUT__1",
}
"""Logical tensor name → the positional name the ``pytorch_libtorch`` backend needs."""


def default_cache_dir() -> Path:
    """``$CHAOSREC_CACHE_DIR/models``, else ``<user cache dir>/chaosrec/models``."""
    return _cache_root() / "models"


@dataclass(frozen=True)
class GoldenSet:
    """A fixed request set for measuring a live service against the offline model.

    Attributes:
        k: the metric cut-off (10).
        user_ids: the users to request, ascending.
        relevant: each user's held-out items (the ground truth).
        expected: each user's top-``k`` from the artifact's own module; a live
            service serving this version must return exactly these.
        metrics: metrics@k of ``expected`` against ``relevant`` (the offline target).
    """

    k: int
    user_ids: tuple[int, ...]
    relevant: tuple[tuple[int, ...], ...]
    expected: tuple[tuple[int, ...], ...]
    metrics: Mapping[str, float]

    def score(self, recommended: Sequence[Sequence[int]]) -> dict[str, float]:
        """Metrics@k of ``recommended`` (one list per user, in ``user_ids`` order)."""
        if len(recommended) != len(self.user_ids):
            raise ConfigError(
                f"recommended has {len(recommended)} rows; expected {len(self.user_ids)}, "
                "one per golden user in user_ids order"
            )
        width = max((len(r) for r in recommended), default=0)
        padded = np.full((len(recommended), max(width, 1)), -1, dtype=np.int64)
        for row, items in enumerate(recommended):
            padded[row, : len(items)] = list(items)
        return metrics_at_k(padded, [set(r) for r in self.relevant], self.k)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GoldenSet:
        """Parse the contents of ``golden.json``."""
        requests = data["requests"]
        return cls(
            k=int(data["k"]),
            user_ids=tuple(int(r["user_id"]) for r in requests),
            relevant=tuple(tuple(int(i) for i in r["relevant"]) for r in requests),
            expected=tuple(tuple(int(i) for i in r["expected"]) for r in requests),
            metrics={str(k): float(v) for k, v in data["metrics"].items()},
        )


@dataclass(frozen=True)
class ModelArtifact:
    """One trained model on disk; :meth:`verify` before trusting ``model.pt``.

    Attributes:
        path: the artifact folder.
        version: first 12 hex digits of ``sha256``.
        sha256: sha256 (hex) of ``model.pt`` as recorded at build time.
        meta: the parsed ``meta.json``.
    """

    path: Path
    version: str
    sha256: str
    meta: Mapping[str, Any]

    @property
    def model_file(self) -> Path:
        """The TorchScript module, ``<path>/model.pt``."""
        return self.path / "model.pt"

    @property
    def popularity(self) -> list[int]:
        """The 100 most-trained item ids, most popular first (a gateway fallback)."""
        data = _read_json(self.path / "popularity.json")
        return [int(i) for i in data["item_ids"]]

    @property
    def golden(self) -> GoldenSet:
        """The golden request set (see :class:`GoldenSet`)."""
        return GoldenSet.from_json(_read_json(self.path / "golden.json"))

    def verify(self) -> None:
        """Check that ``model.pt`` still hashes to the recorded sha256.

        Raises:
            ModelError: the file is missing or its bytes changed; the message says
                how to rebuild it.
        """
        fix = (
            f"delete {self.path} or run `chaosrec model train --force "
            f"--variant {self.meta.get('variant', 'good')}`"
        )
        if not self.model_file.is_file():
            raise ModelError(f"Model artifact {self.path} has no model.pt; {fix}")
        actual = _sha256_file(self.model_file)
        if actual != self.sha256:
            raise ModelError(
                f"Model artifact {self.path} is corrupted: model.pt sha256 {actual[:12]} "
                f"!= recorded {self.sha256[:12]}; {fix}"
            )

    def load_module(self, device: str | torch.device | None = None) -> torch.jit.ScriptModule:
        """Verify, then ``torch.jit.load`` the module (onto ``device``, default CPU)."""
        from chaosrec.model import _torchscript

        self.verify()
        return _torchscript.load(self.model_file, map_location=device or "cpu").eval()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(
            f"Cannot read {path}: {err}; delete {path.parent} or run `chaosrec model train --force`"
        ) from err
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object; delete {path.parent}")
    return data


def _write_json(path: Path, data: Mapping[str, Any], *, indent: int | None = 2) -> None:
    path.write_text(json.dumps(data, indent=indent, sort_keys=True) + "\n", encoding="utf-8")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_artifact(path: Path) -> ModelArtifact:
    """Read the artifact in ``path`` (without verifying ``model.pt``; call :meth:`verify`)."""
    meta = _read_json(Path(path) / "meta.json")
    try:
        return ModelArtifact(
            path=Path(path), version=str(meta["version"]), sha256=str(meta["sha256"]), meta=meta
        )
    except KeyError as err:
        raise ModelError(
            f"{path}/meta.json lacks {err}; delete {path} or run `chaosrec model train --force`"
        ) from err


def cache_key(
    variant: str, seed: int, config: TrainConfig, catalog_sizes: Mapping[str, int]
) -> str:
    """sha256 (hex) over the training code version, seed, variant, sizes and config."""
    payload = {
        "code": TRAINING_CODE_VERSION,
        "seed": seed,
        "variant": variant,
        "catalog": dict(catalog_sizes),
        "config": config.as_dict(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def ensure_model(
    variant: str = "good",
    seed: int = 7,
    cache_dir: Path | None = None,
    *,
    config: TrainConfig | None = None,
    force: bool = False,
) -> ModelArtifact:
    """Return the cached artifact for ``(variant, seed, config)``, training it if needed.

    Training happens in a child process with pinned floating-point paths, on the CPU,
    so the artifact's bytes (and version) are the same on every x86-64 CPU for one
    torch version (:mod:`chaosrec.model._pinned`). Training plus evaluation takes
    ~30 s on 2 CPU cores for ``"good"`` (the ``"bad"`` variant is faster); a cache hit
    costs one sha256 of ``model.pt`` (~10 ms).

    Args:
        variant: ``"good"`` or ``"bad"``.
        seed: seed of the catalog and of training.
        cache_dir: folder holding artifacts; :func:`default_cache_dir` if ``None``.
        config: hyper-parameters; :class:`TrainConfig` defaults if ``None``.
        force: retrain and replace the cached artifact.

    Raises:
        ConfigError: unknown variant or a negative seed.
        ModelError: the cached artifact is corrupted (message says how to fix),
            training failed, or another process held the lock for 15 minutes.
    """
    check_choice("variant", variant, VARIANTS)
    check_int("seed", seed, minimum=0)
    config = config or TrainConfig()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    sizes = {"n_users": DEFAULT_N_USERS, "n_items": DEFAULT_N_ITEMS}
    final = root / f"{variant}-seed{seed}-{cache_key(variant, seed, config, sizes)[:16]}"
    if not force and final.is_dir():
        return _verified(final)

    from filelock import FileLock, Timeout  # a torch dependency; only needed to train

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / f".{final.name}.lock"), timeout=_LOCK_TIMEOUT_S)
    try:
        with lock:
            if not force and final.is_dir():  # another process built it meanwhile
                return _verified(final)
            _build(final, variant=variant, seed=seed, config=config, sizes=sizes)
    except Timeout as err:
        raise ModelError(
            f"Timed out after {_LOCK_TIMEOUT_S:.0f} s waiting for {lock.lock_file}; "
            "another process is still training this model; wait for it or stop it"
        ) from err
    return _verified(final)


def _verified(path: Path) -> ModelArtifact:
    artifact = load_artifact(path)
    artifact.verify()
    return artifact


def _build(
    final: Path, *, variant: str, seed: int, config: TrainConfig, sizes: Mapping[str, int]
) -> None:
    """Train into a temporary sibling of ``final`` and rename it into place (lock held)."""
    for stale in final.parent.glob(f".{final.name}.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp", dir=final.parent))
    staging.chmod(0o755)  # mkdtemp makes it 0700; a Triton run as another user must read it
    try:
        from chaosrec.model._pinned import train_in_child

        train_in_child(staging, variant=variant, seed=seed, config=config.as_dict(), sizes=sizes)
        if final.exists():  # force=True: move the old one aside, then swap
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp", dir=final.parent))
            os.replace(final, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def golden_user_ids(catalog: Catalog) -> npt.NDArray[np.int64]:
    """The golden set's users: ``min(500, n_users)`` of them, ascending, drawn from
    ``catalog.seed`` alone, so they (and their held-out items) are the same on every
    machine whatever the trained weights."""
    rng = np.random.default_rng([catalog.seed, 1])
    n_golden = min(GOLDEN_USERS, catalog.n_users)
    return np.sort(rng.choice(catalog.n_users, size=n_golden, replace=False)).astype(np.int64)


def save_artifact(trained: TrainedModel, catalog: Catalog, out_dir: Path) -> ModelArtifact:
    """Script, evaluate and write ``trained`` as an artifact folder (``meta.json`` last).

    ``out_dir`` is created if missing and must not already hold a ``meta.json``.
    :func:`ensure_model` calls this on a staging folder; call it yourself to
    persist a model trained with :func:`~chaosrec.model.train.train_model`.

    Raises:
        ConfigError: ``out_dir`` already holds an artifact.
    """
    import torch

    from chaosrec.model import _torchscript
    from chaosrec.model._pinned import numerics
    from chaosrec.model.evaluate import evaluate, recommend

    out = Path(out_dir)
    if (out / "meta.json").exists():
        raise ConfigError(f"out_dir={str(out)!r} already holds an artifact; pick an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    variant, config = trained.variant, trained.config
    scripted = _torchscript.script(trained.module)
    model_file = out / "model.pt"
    _torchscript.save_canonical(scripted, model_file)
    sha = _sha256_file(model_file)
    module = _torchscript.load(model_file)
    result = evaluate(module, catalog, k=10)

    ranking = catalog.popularity_ranking()[:POPULARITY_ITEMS]
    counts = catalog.train_item_counts()[ranking]
    _write_json(
        out / "popularity.json",
        {"item_ids": ranking.tolist(), "train_counts": counts.tolist()},
    )

    golden_users = golden_user_ids(catalog)
    expected, _ = recommend(module, golden_users)
    relevant = catalog.test.take(golden_users)
    golden_metrics = metrics_at_k(expected[:, :10], relevant, 10)
    _write_json(
        out / "golden.json",
        {
            "k": 10,
            "seed": catalog.seed,
            "metrics": golden_metrics,
            "requests": [
                {
                    "user_id": int(user),
                    "relevant": relevant.row(row).tolist(),
                    "expected": expected[row, :10].tolist(),
                }
                for row, user in enumerate(golden_users)
            ],
        },
        indent=None,  # 500 requests: one line keeps it ~50 kB
    )
    _write_json(
        out / "meta.json",
        {
            "version": sha[:12],
            "sha256": sha,
            "variant": variant,
            "seed": catalog.seed,
            "n_users": catalog.n_users,
            "n_items": catalog.n_items,
            "top_k": config.top_k,
            "retrieve_k": config.retrieve_k,
            "device_trained": trained.device,
            "train_seconds": round(trained.train_seconds, 3),
            "metrics": {"model": result["model"], "popularity": result["popularity"]},
            "recall_lift": result["recall_lift"],
            "golden_metrics": golden_metrics,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "training_code_version": TRAINING_CODE_VERSION,
            "catalog_fingerprint": catalog.fingerprint(),
            "config": config.as_dict(),
            "torch_version": torch.__version__,
            "numerics": numerics(),
            "io": {
                "input": "user_ids int64 [B] or [B, 1]; unknown ids get the popularity top-k",
                "outputs": ["item_ids int64 [B, top_k]", "scores float32 [B, top_k]"],
                "triton": dict(TRITON_TENSOR_NAMES),
            },
        },
    )
    return load_artifact(out)


_CONFIG_TEMPLATE = """\
# Written by chaosrec.model.export_triton_repository for Triton's PyTorch (LibTorch) backend.
# TorchScript keeps no tensor names, so the backend binds tensors by position:
#   INPUT__0  = USER_ID   int64 [batch, 1]   (forward's only argument)
#   OUTPUT__0 = ITEM_IDS  int64 [batch, {top_k}] (best first)
#   OUTPUT__1 = SCORES    fp32  [batch, {top_k}] (descending)
# Model version {version}; unknown user ids get the popularity top-{top_k}.
name: "{name}"
platform: "pytorch_libtorch"
max_batch_size: {max_batch_size}
input [
  {{
    name: "INPUT__0"
    data_type: TYPE_INT64
    dims: [ 1 ]
  }}
]
output [
  {{
    name: "OUTPUT__0"
    data_type: TYPE_INT64
    dims: [ {top_k} ]
  }},
  {{
    name: "OUTPUT__1"
    data_type: TYPE_FP32
    dims: [ {top_k} ]
  }}
]
dynamic_batching {{ }}
instance_group [
  {{
    count: 1
    kind: {kind}
  }}
]
"""


def export_triton_repository(
    artifact: ModelArtifact,
    out_dir: Path,
    model_name: str = "recsys",
    max_batch_size: int = 64,
    *,
    kind: str | None = None,
) -> Path:
    """Write a Triton model repository serving ``artifact`` with the PyTorch backend.

    Creates ``<out_dir>/<model_name>/config.pbtxt`` and
    ``<out_dir>/<model_name>/1/model.pt``. An existing model folder (one with a
    ``config.pbtxt``) is replaced; any other existing folder there is refused.
    Tensors follow the backend's positional naming (see :data:`TRITON_TENSOR_NAMES`):
    ``INPUT__0`` int64 dims ``[1]``, ``OUTPUT__0`` int64 and ``OUTPUT__1`` fp32
    dims ``[top_k]``, with ``dynamic_batching``.

    Args:
        artifact: a verified artifact (verified again here).
        out_dir: the model repository root (created if missing).
        model_name: Triton model name (letters, digits, ``_``, ``-``, ``.``).
        max_batch_size: Triton's ``max_batch_size`` (>= 1).
        kind: ``"KIND_GPU"`` or ``"KIND_CPU"``; ``KIND_GPU`` iff CUDA is available
            when ``None``.

    Returns:
        The model folder ``<out_dir>/<model_name>``.

    Raises:
        ConfigError: a bad name, batch size or kind, or a non-model folder in the way.
        ModelError: the artifact fails :meth:`ModelArtifact.verify`.
    """
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
    if not model_name or not set(model_name) <= allowed or model_name in {".", ".."}:
        raise ConfigError(
            f"model_name={model_name!r} must be non-empty letters, digits, '_', '-' or '.'"
        )
    check_int("max_batch_size", max_batch_size, minimum=1)
    if kind is None:
        import torch

        kind = "KIND_GPU" if torch.cuda.is_available() else "KIND_CPU"
    check_choice("kind", kind, ("KIND_CPU", "KIND_GPU"))
    artifact.verify()

    model_dir = Path(out_dir) / model_name
    if model_dir.exists():
        if not (model_dir / "config.pbtxt").is_file():
            raise ConfigError(
                f"out_dir/model_name={str(model_dir)!r} exists and is not a Triton model folder "
                "(no config.pbtxt); pick another out_dir or model_name"
            )
        shutil.rmtree(model_dir)
    (model_dir / "1").mkdir(parents=True)
    shutil.copyfile(artifact.model_file, model_dir / "1" / "model.pt")
    config_text = _CONFIG_TEMPLATE.format(
        name=model_name,
        max_batch_size=max_batch_size,
        top_k=int(artifact.meta.get("top_k", 50)),
        kind=kind,
        version=artifact.version,
    )
    (model_dir / "config.pbtxt").write_text(config_text, encoding="utf-8")
    return model_dir

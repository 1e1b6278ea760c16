"""The public surface of chaosrec.model: complete, sorted, and light to import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import chaosrec.model as model

SUBMODULES = ("artifacts", "catalog", "config", "evaluate", "metrics", "serving", "train")

# Public in their submodule but deliberately not re-exported by the package.
NOT_REEXPORTED = {
    "DEFAULT_N_ITEMS",
    "DEFAULT_N_USERS",
    "N_RANKER_FEATURES",
    "RankerMLP",
    "Relevant",
    "Variant",
    "grouped_topk",
    "ranker_features",
}


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_sorted_and_unique() -> None:
    assert model.__all__ == sorted(model.__all__, key=_isort_key)
    assert len(set(model.__all__)) == len(model.__all__)


def test_every_name_in_all_resolves() -> None:
    for name in model.__all__:
        assert getattr(model, name) is not None, name


def test_all_covers_every_public_submodule_name() -> None:
    exported = set(model.__all__)
    for sub in SUBMODULES:
        names = set(importlib.import_module(f"chaosrec.model.{sub}").__all__)
        assert names - NOT_REEXPORTED <= exported, (sub, names - NOT_REEXPORTED - exported)


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, chaosrec.model as m; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "m.generate_catalog(n_users=5, n_items=100); "
        "assert 'torch' not in sys.modules, 'torch imported by the catalog'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

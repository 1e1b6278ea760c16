from __future__ import annotations

import subprocess
import sys

import chaosrec
import chaosrec.errors


def test_all_is_sorted_and_complete() -> None:
    assert chaosrec.__all__ == sorted(chaosrec.__all__)
    for name in chaosrec.errors.__all__:
        assert name in chaosrec.__all__, f"{name} missing from chaosrec.__all__"
    for name in chaosrec.__all__:
        assert hasattr(chaosrec, name)


def test_every_error_is_a_chaosrec_error_with_a_docstring() -> None:
    for name in chaosrec.errors.__all__:
        cls = getattr(chaosrec.errors, name)
        assert issubclass(cls, chaosrec.ChaosrecError)
        assert cls.__doc__ and cls.__doc__.strip()
    assert issubclass(chaosrec.ConfigError, ValueError)


def test_import_is_light() -> None:
    code = (
        "import sys, chaosrec, chaosrec.core.topology;"
        "heavy = [m for m in ('torch', 'tritonclient', 'aiohttp', 'numpy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


SUBPACKAGES = [
    "chaosrec.adapters",
    "chaosrec.adapters.process",
    "chaosrec.adapters.tools",
    "chaosrec.adapters.toxiproxy",
    "chaosrec.core",
    "chaosrec.ctk",
    "chaosrec.drill",
    "chaosrec.faults",
    "chaosrec.load",
    "chaosrec.model",
    "chaosrec.reporting",
    "chaosrec.schedules",
    "chaosrec.slo",
    "chaosrec.stack",
    "chaosrec.steady_state",
]


def _isort_order(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest, each sorted."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_every_subpackage_has_a_sorted_all_of_real_names() -> None:
    import importlib

    for name in SUBPACKAGES:
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), f"{name} has no __all__"
        assert list(module.__all__) == sorted(module.__all__, key=_isort_order), (
            f"{name}.__all__ is not sorted (constants, then classes, then the rest)"
        )
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"


def test_importing_the_plugin_loads_no_heavy_or_optional_package() -> None:
    heavy = ("torch", "tritonclient", "aiohttp", "chaoslib", "allure", "matplotlib")
    code = (
        "import sys, chaosrec.plugin;"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules or "
        "any(k.startswith(m + '.') for k in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

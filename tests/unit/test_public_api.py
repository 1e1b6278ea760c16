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

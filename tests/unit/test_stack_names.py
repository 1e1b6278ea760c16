"""Stack names become folder names: anything but ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}`` is a
one-line ConfigError before anything is created, in the CLI and the Chaos Toolkit front."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaosrec.errors import ConfigError
from chaosrec.stack.stack import check_stack_name, stack_state_dir

GOOD = ["default", "a", "7", "drills-1", "A.b_c-9", "x" * 64, "a..b"]
BAD = ["", "../../etc", "..", ".", "a/b", "/abs", ".hidden", "-x", "_x", "a b", "x" * 65,
       "n\u00e4me", "a\n", "~root", None, 3]  # fmt: skip


@pytest.mark.parametrize("name", GOOD, ids=lambda n: repr(n)[:12])
def test_good_names(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(tmp_path))
    assert check_stack_name(name) == name
    assert stack_state_dir(name) == tmp_path / "stacks" / name


@pytest.mark.parametrize("name", BAD, ids=lambda n: repr(n)[:12])
def test_bad_names(name: Any) -> None:
    with pytest.raises(ConfigError) as info:
        check_stack_name(name, "--name")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"--name: stack name {name!r} is not allowed")
    assert "A-Z a-z 0-9 . _ -" in message


@pytest.fixture
def nothing_may_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A cache folder of our own, and every way a stack command could start something or
    take over the process's signals turned into a failure (guards for a regression)."""
    from chaosrec import cli
    from chaosrec.stack.stack import EmbeddedStack

    cache = tmp_path / "cache"
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(cache))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("a stack command got past a bad name")

    monkeypatch.setattr(cli, "ManagedProcess", refuse)
    monkeypatch.setattr(EmbeddedStack, "start", refuse)
    # cli's own view of the signal module: pytest-timeout needs the real signal.signal
    monkeypatch.setattr(
        cli,
        "signal",
        SimpleNamespace(
            signal=refuse, SIGTERM=signal.SIGTERM, SIGKILL=signal.SIGKILL, SIGINT=signal.SIGINT
        ),
    )
    return cache


@pytest.mark.parametrize("command", ["up", "serve", "down", "status"])
def test_every_stack_command_refuses_a_bad_name_before_creating_anything(
    command: str, nothing_may_start: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaosrec.cli import main

    assert main(["stack", command, "--name", "../../escaped"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "chaosrec: --name: stack name '../../escaped' is not allowed; use 1 to 64 characters "
        "of A-Z a-z 0-9 . _ - starting with a letter or digit (e.g. drills-1)"
    ]
    tmp = nothing_may_start.parent
    assert not nothing_may_start.exists() and not (tmp / "escaped").exists()


@pytest.mark.parametrize("how", ["configuration", "environment"])
def test_the_chaos_toolkit_stack_setting_is_checked(
    how: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from chaosrec.ctk import context

    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(tmp_path))
    for key in context.ENV_KEYS.values():
        monkeypatch.delenv(key, raising=False)
    configuration = {}
    if how == "configuration":
        configuration["chaosrec_stack"] = "../../etc"
    else:
        monkeypatch.setenv("CHAOSREC_STACK", "../../etc")
    context.bind(None)
    with pytest.raises(ConfigError, match=r"stack name '\.\./\.\./etc' is not allowed") as info:
        context.session(configuration)
    assert "\n" not in str(info.value)
    where = "configuration key 'chaosrec_stack'" if how == "configuration" else "CHAOSREC_STACK"
    assert where in str(info.value)
    assert context.current() is None

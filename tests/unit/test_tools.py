"""Finding and installing toxiproxy-server, with fake binaries and a fake `go` (no network)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import platformdirs
import pytest

from chaosrec.adapters.tools import toxiproxy as tools
from chaosrec.errors import SetupError, ToolNotFoundError

PINNED_NAME = f"toxiproxy-server-v{tools.TOXIPROXY_VERSION}"


def make_executable(path: Path, body: str = "exit 0\n") -> Path:
    """Write a POSIX shell script at ``path`` and make it executable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """An isolated environment: empty tools dir, empty PATH dir, no TOXIPROXY_BIN."""
    tools_path = tmp_path / "tools"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.delenv("TOXIPROXY_BIN", raising=False)
    monkeypatch.delenv("CHAOSREC_CACHE_DIR", raising=False)
    monkeypatch.setenv("CHAOSREC_TOOLS_DIR", str(tools_path))
    monkeypatch.setenv("PATH", str(bin_dir))
    return {"tools": tools_path, "bin": bin_dir, "tmp": tmp_path}


# ----------------------------------------------------------------------- tools_dir


def test_tools_dir_defaults_to_the_user_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSREC_TOOLS_DIR", raising=False)
    monkeypatch.delenv("CHAOSREC_CACHE_DIR", raising=False)
    assert tools.tools_dir() == Path(platformdirs.user_cache_dir("chaosrec")) / "tools"


def test_tools_dir_honours_the_cache_dir_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CHAOSREC_TOOLS_DIR", raising=False)
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(tmp_path / "cache"))
    assert tools.tools_dir() == tmp_path / "cache" / "tools"


def test_tools_dir_variable_wins_over_the_cache_dir_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAOSREC_TOOLS_DIR", str(tmp_path / "mine"))
    assert tools.tools_dir() == tmp_path / "mine"


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSREC_TOOLS_DIR", "")
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", "")
    assert tools.tools_dir() == Path(platformdirs.user_cache_dir("chaosrec")) / "tools"


# ------------------------------------------------------------------ find_toxiproxy


def test_nothing_found_gives_none(env: dict[str, Path]) -> None:
    assert tools.find_toxiproxy() is None


def test_toxiproxy_bin_wins_over_tools_dir_and_path(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = make_executable(env["tmp"] / "elsewhere" / "my-toxiproxy")
    make_executable(env["tools"] / PINNED_NAME)
    make_executable(env["bin"] / "toxiproxy-server")
    monkeypatch.setenv("TOXIPROXY_BIN", str(explicit))
    assert tools.find_toxiproxy() == explicit


def test_tools_dir_wins_over_path(env: dict[str, Path]) -> None:
    installed = make_executable(env["tools"] / PINNED_NAME)
    make_executable(env["bin"] / "toxiproxy-server")
    assert tools.find_toxiproxy() == installed


def test_pinned_version_wins_over_other_versions_in_tools_dir(env: dict[str, Path]) -> None:
    make_executable(env["tools"] / "toxiproxy-server-v9.0.0")
    pinned = make_executable(env["tools"] / PINNED_NAME)
    assert tools.find_toxiproxy() == pinned


def test_newest_other_version_in_tools_dir_is_used_without_the_pinned_one(
    env: dict[str, Path],
) -> None:
    make_executable(env["tools"] / "toxiproxy-server-v2.9.0")
    newest = make_executable(env["tools"] / "toxiproxy-server-v2.10.1")
    (env["tools"] / "toxiproxy-server-v3.0.0.partial").write_text("junk")
    assert tools.find_toxiproxy() == newest


def test_path_is_the_last_resort(env: dict[str, Path]) -> None:
    on_path = make_executable(env["bin"] / "toxiproxy-server")
    assert tools.find_toxiproxy() == on_path


def test_toxiproxy_bin_pointing_at_a_missing_file_is_an_error(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_executable(env["bin"] / "toxiproxy-server")  # must not be silently used instead
    missing = env["tmp"] / "nope" / "toxiproxy-server"
    monkeypatch.setenv("TOXIPROXY_BIN", str(missing))
    with pytest.raises(
        ToolNotFoundError, match=r"TOXIPROXY_BIN=.* points at a missing file"
    ) as info:
        tools.find_toxiproxy()
    assert str(missing) in str(info.value)
    assert "\n" not in str(info.value)


def test_toxiproxy_bin_pointing_at_a_non_executable_file_is_an_error(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = env["tmp"] / "toxiproxy-server"
    plain.write_text("not a program")
    monkeypatch.setenv("TOXIPROXY_BIN", str(plain))
    with pytest.raises(ToolNotFoundError, match="is not an executable file; run `chmod"):
        tools.find_toxiproxy()


# --------------------------------------------------------------- install_toxiproxy


def test_install_without_binary_or_go_says_how_to_get_one(env: dict[str, Path]) -> None:
    with pytest.raises(ToolNotFoundError) as info:
        tools.install_toxiproxy()
    message = str(info.value)
    assert "\n" not in message
    for hint in ("install Go", "chaosrec setup", "TOXIPROXY_BIN", "PATH", str(env["tools"])):
        assert hint in message


def test_ensure_without_binary_or_go_raises_the_same_error(env: dict[str, Path]) -> None:
    with pytest.raises(ToolNotFoundError, match="no Go toolchain"):
        tools.ensure_toxiproxy()


def test_install_returns_an_existing_binary_without_building(env: dict[str, Path]) -> None:
    on_path = make_executable(env["bin"] / "toxiproxy-server")
    make_executable(env["bin"] / "go", "echo 'go must not run' >&2\nexit 3\n")
    assert tools.install_toxiproxy() == on_path
    assert tools.ensure_toxiproxy() == on_path


FAKE_GO = """\
PATH=/usr/bin:/bin
echo "$@" > "$(dirname "$0")/go-args"
echo "$GOBIN" > "$(dirname "$0")/go-gobin"
printf '#!/bin/sh\\necho toxiproxy-server version 2.12.0\\n' > "$GOBIN/server"
chmod +x "$GOBIN/server"
"""


def test_install_builds_with_go_into_the_tools_dir(env: dict[str, Path]) -> None:
    make_executable(env["bin"] / "go", FAKE_GO)
    installed = tools.install_toxiproxy()
    assert installed == env["tools"] / PINNED_NAME
    assert os.access(installed, os.X_OK)
    args = (env["bin"] / "go-args").read_text().split()
    assert args == ["install", f"{tools.TOXIPROXY_MODULE}@v{tools.TOXIPROXY_VERSION}"]
    gobin = Path((env["bin"] / "go-gobin").read_text().strip())
    assert gobin.parent == env["tools"]  # same filesystem, so the final rename is atomic
    assert not gobin.exists()  # the scratch folder is cleaned up
    assert sorted(p.name for p in env["tools"].iterdir()) == [PINNED_NAME]
    assert tools.find_toxiproxy() == installed
    assert tools.toxiproxy_version(installed) == "2.12.0"


def test_force_rebuilds_even_when_a_binary_exists(env: dict[str, Path]) -> None:
    make_executable(env["bin"] / "toxiproxy-server")
    make_executable(env["bin"] / "go", FAKE_GO)
    assert tools.install_toxiproxy(force=True) == env["tools"] / PINNED_NAME
    assert (env["bin"] / "go-args").exists()


def test_two_concurrent_installs_both_end_with_a_complete_binary(env: dict[str, Path]) -> None:
    make_executable(env["bin"] / "go", "/bin/sleep 0.2\n" + FAKE_GO)
    results: list[Path] = []
    errors: list[BaseException] = []

    def install() -> None:
        try:
            results.append(tools.install_toxiproxy(force=True))
        except BaseException as err:  # pragma: no cover - reported below  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=install) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [env["tools"] / PINNED_NAME] * 2
    assert tools.toxiproxy_version(results[0]) == "2.12.0"
    assert sorted(p.name for p in env["tools"].iterdir()) == [PINNED_NAME]


def test_failed_go_install_raises_setup_error_with_the_output_tail(env: dict[str, Path]) -> None:
    lines = "".join(f"echo 'go: line {i}'\n" for i in range(40))
    make_executable(env["bin"] / "go", lines + "echo 'go: proxy refused' >&2\nexit 1\n")
    with pytest.raises(SetupError, match="failed with exit code 1") as info:
        tools.install_toxiproxy()
    assert "\n" not in str(info.value)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "go: proxy refused" in notes
    assert "go: line 39" in notes
    assert "go: line 0\n" not in notes  # only the tail
    assert not any(env["tools"].iterdir())  # no scratch folder left behind


def test_go_install_timeout_raises_setup_error(env: dict[str, Path]) -> None:
    make_executable(env["bin"] / "go", "echo 'go: downloading'\nexec /bin/sleep 30\n")
    with pytest.raises(SetupError, match=r"did not finish within 0\.5 s"):
        tools.install_toxiproxy(timeout_s=0.5)


# ---------------------------------------------------------------- toxiproxy_version


def test_version_from_a_release_build(tmp_path: Path) -> None:
    binary = make_executable(tmp_path / "t", "echo 'toxiproxy-server version v2.11.3'\n")
    assert tools.toxiproxy_version(binary) == "2.11.3"


def test_version_of_a_go_install_build_comes_from_embedded_build_info(tmp_path: Path) -> None:
    # `go install` builds print "version git"; Go embeds the module version in the binary.
    body = (
        "echo 'toxiproxy-server version git'\nexit 0\n"
        "# path\tgithub.com/Shopify/toxiproxy/v2/cmd/server\n"
        "mod\tgithub.com/Shopify/toxiproxy/v2\tv2.12.0\th1:abc=\n"
    )
    binary = make_executable(tmp_path / "t", body)
    assert tools.toxiproxy_version(binary) == "2.12.0"


def test_unknown_version_is_a_setup_error(tmp_path: Path) -> None:
    binary = make_executable(tmp_path / "t", "echo 'hello'\n")
    with pytest.raises(SetupError, match=r"cannot tell the version of .*'hello'"):
        tools.toxiproxy_version(binary)


def test_version_of_a_missing_binary_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="cannot run"):
        tools.toxiproxy_version(tmp_path / "missing")

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrec.errors import BackupError
from chaosrec.stack.backup import ArtifactProblem, ModelBackup, sha256_file


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder like the stack's: two versions, weights symlinked into a cache."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "good.pt").write_bytes(b"good weights" * 1000)
    (cache / "bad.pt").write_bytes(b"bad weights" * 1000)
    root = tmp_path / "repo" / "recsys"
    for version, weights in (("1", "good.pt"), ("2", "bad.pt")):
        (root / version).mkdir(parents=True)
        (root / version / "model.py").write_text("# backend\n")
        (root / version / "model.pt").symlink_to(cache / weights)
    (root / "config.pbtxt").write_text('name: "recsys"\n')
    return root


def test_backup_copies_bytes_behind_symlinks(model_dir: Path, tmp_path: Path) -> None:
    backup = ModelBackup.create(tmp_path / "store", model_dir)
    assert backup.versions == ("1", "2")
    copy = tmp_path / "store" / "1" / "model.pt"
    assert not copy.is_symlink() and copy.read_bytes() == b"good weights" * 1000
    assert backup.files["1/model.pt"] == sha256_file(model_dir / "1" / "model.pt")
    assert backup.verify(model_dir) == []
    # reopened from disk, it is the same backup
    assert ModelBackup(tmp_path / "store").files == backup.files


def test_damage_is_found_and_restored_without_losing_a_version(
    model_dir: Path, tmp_path: Path
) -> None:
    backup = ModelBackup.create(tmp_path / "store", model_dir)
    (model_dir / "1" / "model.pt").unlink()
    (model_dir / "2" / "model.pt").unlink()
    (model_dir / "2" / "model.pt").write_bytes(b"garbage")
    assert backup.verify(model_dir) == [
        ArtifactProblem("1/model.pt", "missing"),
        ArtifactProblem("2/model.pt", "checksum"),
    ]
    report = backup.restore(model_dir)
    assert report.restored == ("1/model.pt", "2/model.pt")
    assert report.verified == 5 and report.versions == ("1", "2")
    assert backup.verify(model_dir) == []
    assert (model_dir / "2" / "model.pt").read_bytes() == b"bad weights" * 1000


def test_a_damaged_backup_is_refused(model_dir: Path, tmp_path: Path) -> None:
    backup = ModelBackup.create(tmp_path / "store", model_dir)
    (tmp_path / "store" / "1" / "model.pt").write_bytes(b"bit rot")
    (model_dir / "1" / "model.pt").unlink()
    with pytest.raises(BackupError, match=r"backup .* is damaged \(1/model.pt: checksum\)"):
        backup.restore(model_dir)
    assert not (model_dir / "1" / "model.pt").exists()  # nothing half-restored


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-manifest", r"holds no backup \(manifest.json missing\)"),
        ("bad-manifest", r"is not a backup manifest"),
    ],
    ids=["no-manifest", "bad-manifest"],
)
def test_opening_a_folder_that_is_not_a_backup(tmp_path: Path, setup: str, message: str) -> None:
    if setup == "bad-manifest":
        (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BackupError, match=message):
        ModelBackup(tmp_path)


def test_nothing_to_back_up(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"does not exist; nothing to back up"):
        ModelBackup.create(tmp_path / "store", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackupError, match=r"is empty; nothing to back up"):
        ModelBackup.create(tmp_path / "store", tmp_path / "empty")

"""Model repository backup and checksum-verified restore (the seeds' "backup and restore").

A backup is a copy of every file of a Triton model folder (every version, its
``config.pbtxt``, weights and code; symlinks are followed, so the bytes are
copied) plus a ``manifest.json`` of SHA-256 checksums. :meth:`ModelBackup.verify`
compares a live folder with the manifest; :meth:`ModelBackup.restore` first checks
the backup's own copies against the manifest (a damaged backup is refused, never
restored), then rewrites each missing or damaged file atomically and verifies the
result. Nothing the manifest lists is lost (RPO = 0 for every version backed up).

Example::

    backup = ModelBackup.create(store_dir, repo / "recsys")
    ...                                   # a disk fault damages repo / "recsys"
    backup.verify(repo / "recsys")        # -> [ArtifactProblem('1/model.pt', 'checksum'), ...]
    backup.restore(repo / "recsys")       # -> RestoreReport(restored=('1/model.pt',), ...)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from chaosrec.errors import BackupError

__all__ = ["ArtifactProblem", "ModelBackup", "RestoreReport", "sha256_file"]

_MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (a symlink's target)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ArtifactProblem:
    """One file that does not match the manifest: ``missing`` or ``checksum``."""

    path: str  # relative to the model folder, e.g. "1/model.pt"
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass(frozen=True)
class RestoreReport:
    """What :meth:`ModelBackup.restore` did."""

    restored: tuple[str, ...]
    verified: int  # files whose checksum matches the manifest after the restore
    versions: tuple[str, ...]  # model versions present after the restore
    took_s: float


class ModelBackup:
    """A checksummed copy of one model folder, kept in ``store``."""

    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        manifest_path = self.store / _MANIFEST
        if not manifest_path.is_file():
            raise BackupError(
                f"{self.store} holds no backup ({_MANIFEST} missing); create one with "
                "ModelBackup.create(store, model_dir)"
            )
        try:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
            self.files: dict[str, str] = dict(data["files"])
        except (ValueError, KeyError, TypeError) as err:
            raise BackupError(f"{manifest_path} is not a backup manifest: {err}") from err

    @classmethod
    def create(cls, store: Path, model_dir: Path) -> ModelBackup:
        """Copy every file under ``model_dir`` into ``store`` with a checksum manifest."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise BackupError(f"model folder {model_dir} does not exist; nothing to back up")
        store = Path(store)
        files: dict[str, str] = {}
        for source in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            rel = source.relative_to(model_dir).as_posix()
            _copy_atomic(source, store / rel)
            files[rel] = sha256_file(store / rel)
        if not files:
            raise BackupError(f"model folder {model_dir} is empty; nothing to back up")
        manifest = {"created_at": time.time(), "source": str(model_dir), "files": files}
        _write_atomic(store / _MANIFEST, json.dumps(manifest, indent=2).encode())
        return cls(store)

    @property
    def versions(self) -> tuple[str, ...]:
        """Model versions (numeric top-level folders) the backup holds."""
        return tuple(
            sorted(
                {rel.split("/")[0] for rel in self.files if rel.split("/")[0].isdigit()}, key=int
            )
        )

    def verify(self, model_dir: Path) -> list[ArtifactProblem]:
        """Files of ``model_dir`` that are missing or differ from the manifest ([] if none)."""
        return _check(Path(model_dir), self.files)

    def restore(self, model_dir: Path) -> RestoreReport:
        """Rewrite every missing or damaged file of ``model_dir`` from the backup, after
        checking the backup's own copies; raise :class:`BackupError` if the backup is
        damaged or the restored folder still does not verify."""
        started = time.monotonic()
        damaged_backup = _check(self.store, self.files)
        if damaged_backup:
            raise BackupError(
                f"backup {self.store} is damaged ({', '.join(map(str, damaged_backup))}); "
                "refusing to restore from it: restore from another copy"
            )
        model_dir = Path(model_dir)
        problems = self.verify(model_dir)
        for problem in problems:
            _copy_atomic(self.store / problem.path, model_dir / problem.path)
        remaining = self.verify(model_dir)
        if remaining:
            raise BackupError(
                f"{model_dir} still differs from the backup after restore: "
                f"{', '.join(map(str, remaining))}; check the disk and permissions"
            )
        return RestoreReport(
            restored=tuple(p.path for p in problems),
            verified=len(self.files),
            versions=self.versions,
            took_s=time.monotonic() - started,
        )


def _check(root: Path, files: dict[str, str]) -> list[ArtifactProblem]:
    problems = []
    for rel, expected in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            problems.append(ArtifactProblem(rel, "missing"))
        elif sha256_file(path) != expected:
            problems.append(ArtifactProblem(rel, "checksum"))
    return problems


def _copy_atomic(source: Path, target: Path) -> None:
    """Copy bytes (following symlinks) to ``target`` via a temporary file and rename, so a
    reader never sees a half-written file; an existing symlink at ``target`` is replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)

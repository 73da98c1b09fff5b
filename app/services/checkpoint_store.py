"""The server's store of checkpoint files that workers on other hosts published: a trained checkpoint
is written on the worker's own disk, so its files are uploaded here, each under its sha256
(`<data_dir>/store/sha256/<first two hex digits>/<sha256>`), before the checkpoint is registered.
The download route (app.services.checkpoint_downloads) serves a manifest's file from here first and
from the registered path otherwise, so any worker can then score the checkpoint or resume its
training (README "Running on several hosts").

Addressed by content, a file is stored once whatever checkpoints list it (a series' config and
tokenizer files are the same at every step), and a file that is here is the right one: an upload is
written to a temporary file, hashed as it arrives and renamed into place only when its sha256 is the
one it was sent under. Two uploads of one file at once both finish; one rename wins.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

from app.services.errors import InvalidInput

STORE_FOLDER = ("store", "sha256")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
TEMPORARY_PREFIX = ".upload-"
# An upload's temporary file is written to as the bytes arrive; one untouched this long belongs to a
# server that died mid-upload (another replica's live upload is younger).
ABANDONED_AFTER_S = 3600.0


def store_root(data_dir: Path) -> Path:
    return data_dir.joinpath(*STORE_FOLDER)


def checked_sha256(value: str) -> str:
    if not SHA256_HEX.match(value):
        raise InvalidInput(f"{value[:80]!r} is not a sha256 (64 lower-case hex digits)")
    return value


def stored_path(data_dir: Path, sha256: str) -> Path:
    return store_root(data_dir) / sha256[:2] / sha256


def stored_file(data_dir: Path, sha256: str) -> Path | None:
    """The stored file with this sha256, None when none was published."""
    path = stored_path(data_dir, sha256)
    return path if path.is_file() else None


def sweep_abandoned(data_dir: Path, *, older_than_s: float = ABANDONED_AFTER_S) -> int:
    """Delete upload temporaries untouched for `older_than_s` (a server killed mid-upload leaves
    them); how many went. Run when the API starts."""
    cutoff, removed = time.time() - older_than_s, 0
    for temporary in store_root(data_dir).glob(f"*/{TEMPORARY_PREFIX}*"):
        try:
            if temporary.stat().st_mtime < cutoff:
                temporary.unlink()
                removed += 1
        except FileNotFoundError:  # finished or swept by another replica meanwhile
            continue
    return removed


def missing(data_dir: Path, hashes: list[str]) -> list[str]:
    """Those of `hashes` the store lacks, in their order, each once."""
    return [sha for sha in dict.fromkeys(checked_sha256(h) for h in hashes) if stored_file(data_dir, sha) is None]


class Upload:
    """One file arriving: written to a temporary file in the store and hashed as it comes;
    `finish` puts it in place if its sha256 is the expected one, else removes it. Use as a context
    manager, so that an upload that breaks off leaves nothing behind."""

    def __init__(self, data_dir: Path, sha256: str):
        self.sha256 = checked_sha256(sha256)
        self.target = stored_path(data_dir, sha256)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=self.target.parent)
        self.temporary = Path(name)
        self.sink = os.fdopen(handle, "wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.sink.write(chunk)
        self.size += len(chunk)

    def finish(self) -> bool:
        """Verify and put in place; True when this upload stored the file, False when it was there."""
        self.sink.flush()
        os.fsync(self.sink.fileno())
        self.sink.close()
        received = self.digest.hexdigest()
        if received != self.sha256:
            raise InvalidInput(f"the {self.size} bytes sent hash to sha256 {received}, not {self.sha256}: "
                               f"nothing was stored", detail={"sha256": received, "size": self.size})
        if self.target.is_file():
            return False
        os.replace(self.temporary, self.target)
        return True

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc_info) -> None:
        self.sink.close()
        self.temporary.unlink(missing_ok=True)

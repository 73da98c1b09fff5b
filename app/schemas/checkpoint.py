from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.db.base import MAX_BIG_INTEGER, MAX_INTEGER
from app.schemas.common import OrmModel, ServerPath, UtcDateTime

# tokens_seen is a 64-bit column.
MAX_TOKENS_SEEN = MAX_BIG_INTEGER
# A checkpoint is at most app.services.checkpoint_manifest.MAX_FILES files.
MAX_STORE_QUERY = 1000
from app.vocab import CHECKPOINT_FORMATS


class CheckpointCreate(BaseModel):
    path: ServerPath = Field(description="Server-side safetensors directory or .gguf file, under a model root.")
    series: str | None = Field(None, max_length=200, description="Series name; default: the file or directory name.")
    step: int = Field(0, ge=0, le=MAX_INTEGER)
    tokens_seen: int | None = Field(None, ge=0, le=MAX_TOKENS_SEEN)


class CheckpointOut(OrmModel):
    id: int
    series_id: int
    series_name: str
    step: int
    tokens_seen: int | None
    format: Literal[CHECKPOINT_FORMATS]
    path: str | None = Field(description="Server-side path; only admin callers (and an open server) see it.")
    weights_sha256: str
    tokenizer_fingerprint: str
    architecture: str
    meta: dict
    manifest_sha256: str | None = Field(description="Digest of the checkpoint's manifest (its files' names, sizes and "
                                                    "sha256): its content's name on every host. None until recorded.")
    created_at: UtcDateTime


class CheckpointFileOut(BaseModel):
    name: str = Field(description="Path inside the checkpoint (POSIX, relative); GET .../files/{name} downloads it.")
    size: int
    sha256: str


class CheckpointManifestOut(BaseModel):
    checkpoint_id: int
    sha256: str = Field(description="Digest over the files' `<sha256> <size> <name>` lines in name order.")
    total_bytes: int
    files: list[CheckpointFileOut]


class CheckpointUploadOut(CheckpointOut):
    upload_sha256: str = Field(description="sha256 of the uploaded file as received.")
    upload_bytes: int
    reused: bool = Field(description="The same file was uploaded before: its unpacked files serve this checkpoint "
                                     "and this copy was not kept.")


class SeriesOut(OrmModel):
    id: int
    name: str
    description: str
    n_checkpoints: int
    created_at: UtcDateTime


class SeriesRegister(BaseModel):
    path: ServerPath = Field(description="Server-side training output folder (one subfolder per checkpoint: checkpoint-N, "
                                  "step-N, global_stepN, iter-N ...) or one checkpoint, under a model root.")
    series: str | None = Field(None, min_length=1, max_length=200,
                               description="Series the checkpoints join (made if new); default: the folder's name.")


class SkippedPath(BaseModel):
    path: str
    reason: str


class SeriesRegistration(BaseModel):
    series_id: int
    series: str
    registered: list[CheckpointOut] = Field(description="Checkpoints registered now, ascending by step.")
    existing: list[CheckpointOut] = Field(description="Checkpoints that were registered already (same weights and step).")
    skipped: list[SkippedPath] = Field(description="Entries that are not checkpoints or were refused, with why.")


class StoreQuery(BaseModel):
    sha256: list[str] = Field(max_length=MAX_STORE_QUERY, description="sha256 of files a worker is about to publish.")


class StoreMissingOut(BaseModel):
    missing: list[str] = Field(description="Those the server's store lacks: PUT each to /checkpoint-files/{sha256}.")


class StoredFileOut(BaseModel):
    sha256: str
    size: int
    stored: bool = Field(description="False when the store held the file already (this copy was dropped).")

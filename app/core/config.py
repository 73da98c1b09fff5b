"""Settings, read from the environment (prefix `FOCALSCOPE_`, plus plain `DATABASE_URL`) and `.env`.

One typed object, built explicitly and passed down (`create_app(settings)`, `Worker(settings)`);
nothing reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.paths import frontend_dir


def checked_api_url(value: str) -> str:
    """An API base URL as workers use it: http(s), without a trailing slash."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"the API URL must start with http:// or https:// (got {value[:100]!r})")
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FOCALSCOPE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("data"), description="Embedded database, model cache and uploads.")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("FOCALSCOPE_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL; default: SQLite file under data_dir.",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    frontend_dir: Path = Field(default_factory=frontend_dir)
    # Server-side paths that `POST /checkpoints` may register. The HTTP API must not become a way
    # to make the server read arbitrary files; the CLI (a local user) is not restricted.
    model_roots: list[Path] = Field(default_factory=list)
    max_upload_mb: float = Field(64.0, gt=0, description="Per request, all files together.")
    max_checkpoint_upload_mb: float = Field(4096.0, gt=0, description="Per uploaded checkpoint, unpacked.")
    max_documents_per_corpus: int = Field(100_000, gt=0)
    max_line_mb: float = Field(16.0, gt=0, description="Longest line of an uploaded corpus file.")
    # A shard is a slice of a run's documents that one worker scores and commits in one
    # transaction: small enough that results appear while a CPU run is going, large enough that
    # a GPU batch is full.
    shard_chars: int = Field(24_000, gt=0)
    # Worker: padded tokens per forward pass. Bounds activation memory; larger is faster on a GPU
    # (a CUDA worker started without --max-batch-tokens uses GPU_MAX_BATCH_TOKENS).
    max_batch_tokens: int = Field(4096, ge=16)
    # Worker: shards of one run claimed into one scoring pool. A GPU finishes a CPU-sized shard in
    # milliseconds; pooling keeps it busy while each shard still commits on its own.
    claim_shards: int = Field(1, ge=1, le=10_000)
    # Worker: torch.compile the decoder layers and the statistics kernel (falls back to eager on
    # any compile error); worth it on a GPU for long runs.
    compile: bool = False
    # Worker: pack several documents per row (own position ids) instead of length buckets.
    pack: bool = False
    # Worker: seconds a checkpoint's tokenizer may take to load before the job fails (a hostile
    # tokenizer file can hang the tokenizers library; a real one loads in under a second).
    tokenizer_load_timeout: float = Field(60.0, gt=0)
    # Worker on a host without the server's disk: where to fetch checkpoints it lacks (README "Running
    # on several hosts"), with a write-scope token when the server requires tokens. A SecretStr: it
    # prints as stars in any log or error.
    api_url: str | None = Field(None, description="The API's base URL, e.g. http://gpu-head:8000.")
    api_token: SecretStr | None = None
    # Worker: load a checkpoint from its registered path when that path is readable on this host. False
    # for hosts where the same path may hold other files: every checkpoint then comes from the local
    # cache, fetched (through the API, or from its URL) and verified.
    use_registered_paths: bool = True
    # Worker with an api_url: upload each checkpoint it trains into the server's store before
    # registering it (app.services.checkpoint_store), so that workers on other hosts can score it and
    # resume its training. False only where every host shares the server's disk.
    publish_checkpoints: bool = True
    lease_seconds: float = Field(120.0, gt=1)
    heartbeat_seconds: float = Field(10.0, gt=0)
    auto_migrate: bool = Field(True, description="Upgrade the schema to head when serving.")
    # One JSON object per log line (with run, job and shard ids) for a log collector; `serve` passes
    # it on to its worker processes.
    log_format: Literal["text", "json"] = "text"
    # Access (README "Security"). Bound to loopback the server is open: one local user. Bound to any
    # other address it needs tokens, and `focalscope serve` refuses to start without an admin token
    # unless insecure_open says to serve everyone who can reach the port.
    insecure_open: bool = Field(False, description="Serve without tokens on a non-loopback address.")
    require_token: bool = Field(False, description="Require tokens on loopback too (a machine shared by users).")
    public_read: bool = Field(False, description="With tokens required: reads need none.")
    # Host header names served besides the loopback names and the bound host (DNS rebinding defence);
    # "*" serves any.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Other origins whose pages may call the API (CORS and the cross-site check), e.g. "https://lab.example".
    allowed_origins: list[str] = Field(default_factory=list)

    @field_validator("host")
    @classmethod
    def _host_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host must not be empty")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return None if value is None else checked_api_url(value)

    @model_validator(mode="after")
    def _defaults(self) -> "Settings":
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            # A lease that runs out between two heartbeats would hand a healthy shard to a second
            # worker and make the first one's results be thrown away.
            raise ValueError("lease_seconds must be at least twice heartbeat_seconds")
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.model_roots:
            self.model_roots = [self.data_dir / "models"]
        return self

    @property
    def loopback_bound(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to any interface

    @property
    def open_access(self) -> bool:
        """No token needed for anything: every caller is the admin."""
        return not self.require_token and (self.loopback_bound or self.insecure_open)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'focalscope.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_line_bytes(self) -> int:
        return int(self.max_line_mb * 1024 * 1024)

    @property
    def max_checkpoint_upload_bytes(self) -> int:
        return int(self.max_checkpoint_upload_mb * 1024 * 1024)

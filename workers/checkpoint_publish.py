"""Publishing a checkpoint this worker trained into the API's store (app.services.checkpoint_store),
before it is registered: a registered checkpoint is then fetchable from every host, by scoring
workers and by a training job that resumes elsewhere (workers.training.job).

Only the files the store lacks travel: a series' config and tokenizer files are the same at every
step, and a step published by an earlier attempt is not sent again. Published only by a worker that
has an API URL (one on a host of its own) unless FOCALSCOPE_PUBLISH_CHECKPOINTS=false says every
host shares the server's disk.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from app.core.config import Settings
from app.services.checkpoint_manifest import Manifest
from workers.api_client import ApiClient

log = logging.getLogger("focalscope.worker")


def publishes(settings: Settings) -> bool:
    return settings.api_url is not None and settings.publish_checkpoints


def publish_checkpoint(path: Path, manifest: Manifest, settings: Settings) -> int:
    """Upload the files of the checkpoint at `path` (a directory) that the store lacks; the bytes sent.
    FetchFailed (retryable) when the API cannot be reached, PermanentError when it refuses a file."""
    client = ApiClient(settings.api_url, settings.api_token)
    started = time.perf_counter()
    lacking = set(client.missing([entry.sha256 for entry in manifest.files]))
    sent = 0
    for entry in manifest.files:
        if entry.sha256 in lacking:
            client.put_file(entry.sha256, path / entry.name)
            lacking.discard(entry.sha256)  # two names, one content: sent once
            sent += entry.size
    log.info("published %s: %d of %d bytes sent in %.1f s", path.name, sent, manifest.total_bytes,
             time.perf_counter() - started)
    return sent

"""Logging for every focalscope process: the usual text lines, or one JSON object per line
(`--log-format json`, FOCALSCOPE_LOG_FORMAT=json) for a log collector.

Ids travel on the record as `extra=` fields (`job_fields(claim)`, `extra={"run_id": ...}`) rather
than in a context variable: a worker's scoring pool holds several shards at once, claimed from its
tokenizer thread, so no single "current job" exists for a thread to carry.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from app.vocab import KIND_SCORE

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields a record may carry as `extra=`; the JSON lines include those present.
CONTEXT_FIELDS = ("run_id", "job_id", "shard", "kind", "attempt", "worker",
                  "method", "path", "route", "status", "duration_ms", "client")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in CONTEXT_FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(*, log_format: str = "text", verbose: bool = False) -> None:
    """The root handler of this process, as logging.basicConfig sets it: only where the root logger
    has none yet (an embedding program's or a test harness's handlers stay)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT, "%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # Alembic announces its migration context on every command; only real upgrades are news.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO if verbose else logging.WARNING)


def job_fields(claim) -> dict:
    """The `extra=` fields that identify a claimed job (a score job is one shard of its run)."""
    fields = {"job_id": claim.job_id, "kind": claim.kind, "attempt": claim.attempts}
    if claim.run_id is not None:
        fields["run_id"] = claim.run_id
    if claim.kind == KIND_SCORE:
        fields["shard"] = claim.job_id
    return fields

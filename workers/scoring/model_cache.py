"""The model a worker keeps loaded between score jobs, and the scorer built on it.

Consecutive shards of a run reuse both: the weights load once, and a compiled graph is built once
per worker process. Eviction: one model at a time. Asking for another checkpoint or dtype drops the
held model and its scorer before the next one loads (two models at once may not fit in memory);
other run options on the same model build a new scorer and drop the old one.
"""

from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from app.schemas.run import RunOptions
from workers.checkpoint_fetch import CheckpointSource, Report, local_checkpoint
from workers.context import PermanentError
from workers.models import LoadedModel, load_checkpoint
from workers.scoring.accel import LinearRouting
from workers.scoring.scorer import Scorer

# (source, dtype) -> the loaded model; a benchmark passes one that returns a model already in memory.
Loader = Callable[[CheckpointSource, str], LoadedModel]


class ModelCache:
    """Owned by the Worker (one per process and device). `settings` are the worker's: its cache
    directory, batch size, packing and compilation."""

    def __init__(self, settings: Settings, *, device: str, routing: LinearRouting | None = None,
                 load: Loader | None = None):
        self.settings = settings
        self.device = device
        # Which linear kernels win on this machine, measured once for every scorer built here.
        self.routing = routing if routing is not None else LinearRouting()
        # None: find the checkpoint's files on this host (fetching them if need be) and load them.
        self._load = load
        self._model: tuple[tuple[CheckpointSource, str], LoadedModel] | None = None
        self._scorer: tuple[str, Scorer] | None = None

    def get_scorer(self, source: CheckpointSource, options: RunOptions, *, report: Report | None = None) -> Scorer:
        """The scorer for `source` (the checkpoint as registered) under `options`, loading the model
        where it is not the held one; `report` follows a fetch of its files, if one is needed."""
        loaded = self._model_for(source, options.dtype, report)
        key = options.key()
        if self._scorer is None or self._scorer[0] != key or self._scorer[1].loaded is not loaded:
            self._scorer = None  # free the old scorer's buffers before building the next
            settings = self.settings
            scorer = Scorer(loaded, options, max_batch_tokens=settings.max_batch_tokens, pack=settings.pack,
                            compile=settings.compile, routing=self.routing)
            self._scorer = (key, scorer)
        return self._scorer[1]

    def _model_for(self, source: CheckpointSource, dtype: str, report: Report | None) -> LoadedModel:
        key = (source, dtype)
        if self._model is not None and self._model[0] == key:
            return self._model[1]
        self._scorer = self._model = None  # free the previous model before loading the next
        if self._load is not None:
            loaded = self._load(source, dtype)
        else:
            loaded = self._load_checkpoint(local_checkpoint(source, self.settings, report=report), dtype)
        self._model = (key, loaded)
        return loaded

    def _load_checkpoint(self, source: CheckpointSource, dtype: str) -> LoadedModel:
        try:
            return load_checkpoint(path=source.path, format=source.format, weights_sha256=source.weights_sha256,
                                   cache_dir=self.settings.cache_dir, device=self.device, dtype=dtype,
                                   tokenizer_timeout=self.settings.tokenizer_load_timeout)
        except FileNotFoundError as exc:
            raise PermanentError(str(exc)) from exc

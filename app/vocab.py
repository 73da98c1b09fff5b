"""Shared vocabulary of the job queue and runs.

Imports nothing from the project (and nothing outside the standard library) so that the ORM, the
queue queries, the workers and the migrations can all use the same names without import cycles.
"""

# Job kinds. A scoring run is split into `score` shards; when the last shard of a run lands, a
# `summarize` job computes the run's aggregates; `train` jobs train a model and register checkpoints.
KIND_SCORE = "score"
KIND_SUMMARIZE = "summarize"
KIND_TRAIN = "train"
JOB_KINDS = (KIND_SCORE, KIND_SUMMARIZE, KIND_TRAIN)

# Job statuses.
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
LIVE_STATUSES = frozenset({QUEUED, RUNNING})
TERMINAL_STATUSES = frozenset({DONE, FAILED, CANCELLED})

# A shard whose worker keeps dying (out of memory, a poisoned document) stops being retried after
# this many claims; its error is shown in the UI while the other shards go on.
MAX_ATTEMPTS = 3

# Checkpoint weight formats. Nothing else is ever loaded: no pickles, no `torch.load`.
FORMAT_SAFETENSORS = "safetensors"
FORMAT_GGUF = "gguf"
CHECKPOINT_FORMATS = (FORMAT_SAFETENSORS, FORMAT_GGUF)

# Window policies for scoring documents longer than the model's context.
WINDOW_ROLLING = "rolling"  # lm-evaluation-harness `loglikelihood_rolling`: disjoint windows
WINDOW_STRIDED = "strided"  # overlapping windows; each token scored once with the most context
WINDOW_POLICIES = (WINDOW_ROLLING, WINDOW_STRIDED)

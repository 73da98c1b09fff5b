"""Shared vocabulary of the job queue, runs and stored scores: each fixed list of names is written here
once, and the schemas, the CLI choices, the ORM, the workers and the `/vocabulary` endpoint (which the
frontend reads) derive theirs from it.

Imports nothing from the project (and nothing outside the standard library) so that the ORM, the
queue queries, the workers and the migrations can all use the same names without import cycles.
Tokenizer names live with the training request (app.training_specs.TOKENIZERS).
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
# The files an uploaded checkpoint may consist of (weights, configs, tokenizer files, a chat template);
# the dashboard leaves a folder's other files (optimizer state, training arguments) out of an upload.
CHECKPOINT_FILE_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".jinja", ".gguf")

# Window policies for scoring documents longer than the model's context.
WINDOW_ROLLING = "rolling"  # lm-evaluation-harness `loglikelihood_rolling`: disjoint windows
WINDOW_STRIDED = "strided"  # overlapping windows; each token scored once with the most context
WINDOW_POLICIES = (WINDOW_ROLLING, WINDOW_STRIDED)

# Dtypes a run can load the weights in; statistics are always computed in float32.
DTYPE_FLOAT32 = "float32"
DTYPE_BFLOAT16 = "bfloat16"
DTYPE_FLOAT16 = "float16"
WEIGHT_DTYPES = (DTYPE_FLOAT32, DTYPE_BFLOAT16, DTYPE_FLOAT16)

# The per-token fields a scoring run stores, in the order the scorer produces them, each with the
# dtype of its packed column (little-endian on disk). Top-k fields hold top_k values per token.
TOKEN_FIELD_DTYPES = {
    "token_id": "int32", "char_start": "int32", "char_end": "int32", "logprob": "float32", "entropy": "float32",
    "rank": "int32", "top_ids": "int32", "top_logprobs": "float32", "sum_p2": "float32", "context_len": "int32",
}
TOKEN_FIELDS = tuple(TOKEN_FIELD_DTYPES)
TOP_K_FIELDS = ("top_ids", "top_logprobs")

# API token scopes, weakest first: each scope may do what the ones before it may. `read` sees the data,
# `write` adds corpora, checkpoint uploads, runs and training; `admin` also makes the server read its own
# files (registering server-side paths) and is shown server-side file paths.
SCOPE_READ = "read"
SCOPE_WRITE = "write"
SCOPE_ADMIN = "admin"
SCOPES = (SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN)

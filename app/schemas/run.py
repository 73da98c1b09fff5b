from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas.checkpoint import CheckpointOut
from app.schemas.common import ErrorText, RowId, UtcDateTime
from app.schemas.corpus import CorpusOut
from app.vocab import DTYPE_FLOAT32, JOB_STATUSES, WEIGHT_DTYPES, WINDOW_POLICIES, WINDOW_ROLLING, WINDOW_STRIDED

# 2048 is lm-evaluation-harness's default context for models that do not state one.
DEFAULT_MAX_LENGTH = 2048
DEFAULT_TOP_K = 5
MAX_WINDOW = 131_072  # tokens; beyond any model's context


class RunOptions(BaseModel):
    """Everything that changes a run's numbers; two runs with equal options are the same run."""

    model_config = ConfigDict(extra="forbid")

    window: Literal[WINDOW_POLICIES] = Field(
        WINDOW_ROLLING, description="rolling: disjoint windows (lm-eval compatible); strided: overlapping windows."
    )
    max_length: int = Field(DEFAULT_MAX_LENGTH, ge=2, le=MAX_WINDOW, description="Tokens per window (capped at the model's context).")
    stride: int | None = Field(None, ge=1, le=MAX_WINDOW, description="strided only: new tokens per window; default max_length // 2.")
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=50, description="Alternatives stored per token.")
    dtype: Literal[WEIGHT_DTYPES] = Field(
        DTYPE_FLOAT32, description="Weights' dtype; statistics are always computed in float32."
    )

    @model_validator(mode="after")
    def _stride(self) -> "RunOptions":
        if self.window == WINDOW_STRIDED:
            if self.stride is None:
                self.stride = max(1, self.max_length // 2)
            if self.stride >= self.max_length:
                # A window's first token predicts nothing inside it: with stride == max_length that
                # token would never be scored.
                raise ValueError("stride must be smaller than max_length")
        elif self.stride is not None:
            raise ValueError("stride applies to the strided window policy only")
        return self

    def key(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))


class RunCreate(BaseModel):
    checkpoint_id: RowId
    corpus_id: RowId
    options: RunOptions = Field(default_factory=RunOptions)


class RunProgress(BaseModel):
    status: Literal[JOB_STATUSES]
    shards_total: int
    shards_done: int
    shards_failed: int
    documents_total: int
    documents_done: int
    tokens_done: int
    tokens_per_s: float | None
    errors: list[ErrorText]


class RunSummaryOut(BaseModel):
    n_tokens: int
    n_documents: int
    mean_loss: float
    perplexity: float
    ece: float
    brier: float
    top1_accuracy: float
    stats: dict


class RunHeadline(BaseModel):
    """The few summary numbers a list of runs shows."""

    n_tokens: int
    mean_loss: float
    perplexity: float
    ece: float
    top1_accuracy: float


class RunOut(BaseModel):
    id: int
    created_at: UtcDateTime
    options: RunOptions
    checkpoint: CheckpointOut
    corpus: CorpusOut
    progress: RunProgress
    headline: RunHeadline | None = None
    summary: RunSummaryOut | None = Field(None, description="Full summary; only on GET /runs/{id}.")


class RunDocument(BaseModel):
    document_id: int
    position: int
    title: str
    source: str
    n_chars: int
    scored: bool
    n_tokens: int | None
    mean_loss: float | None
    max_loss: float | None


class RunDocumentNeighbours(BaseModel):
    """Where one document sits in its run's document list, and the nearest scored documents around it."""

    previous: RunDocument | None = Field(description="The nearest scored document before this one in list order.")
    next: RunDocument | None = Field(description="The nearest scored document after this one in list order.")
    position: int = Field(description="1-based index of this document in the run's document list.")
    total: int = Field(description="Documents in the run's corpus.")


class DocumentTokens(BaseModel):
    """One document's tokens under one run, as parallel arrays (index i = token i)."""

    run_id: int
    document_id: int
    n_tokens: int
    top_k: int
    gamma: float
    text: list[str] = Field(description="Display text of each token: its character span, minus characters an earlier token already shows (pieces of one multi-byte character show it once).")
    token_id: list[int]
    char_start: list[int]
    char_end: list[int]
    logprob: list[float]
    loss: list[float]
    p: list[float]
    focal_weight: list[float]
    focal_loss: list[float]
    gradient_multiplier: list[float] = Field(description="g(p, γ) = (1−p)^γ − γ·p·(1−p)^(γ−1)·log p: focal loss's gradient relative to cross-entropy's.")
    gltr_bucket: list[int] = Field(description="GLTR's bucket of the rank: 0 (< 10), 1 (< 100), 2 (< 1000), 3 (≥ 1000).")
    entropy: list[float]
    rank: list[int]
    context_len: list[int]
    sum_p2: list[float]
    top_ids: list[list[int]]
    top_logprobs: list[list[float]]
    top_text: list[list[str]] = Field(description="Display text of each top-k alternative (empty until a worker has stored the vocabulary).")

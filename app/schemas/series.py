"""A series' overview (its checkpoints and the corpora they were scored on) and the statistics across its
checkpoints on a corpus (definitions: docs/formulas.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.schemas.common import UtcDateTime
from app.schemas.run import RunOptions

# The context snippet around a token occurrence (app/services/series_output.py CONTEXT_CHARS).
ContextBefore = Annotated[str, Field(description="Up to 40 characters of the document before the token.")]
ContextAfter = Annotated[str, Field(description="Up to 40 characters of the document after the token.")]

Cell = Literal["HH", "LH", "HL", "LL"]
Region = Literal["easy-to-learn", "ambiguous", "hard-to-learn"]
ROUNDED = "rounded to 4 significant digits to keep the response compact"


class SeriesCheckpointRun(BaseModel):
    step: int
    checkpoint_id: int
    run_id: int
    status: str


class SeriesCorpusRun(SeriesCheckpointRun):
    options: RunOptions


class SeriesCorpus(BaseModel):
    corpus_id: int
    corpus_name: str
    n_documents: int
    runs: list[SeriesCorpusRun] = Field(description="The newest run of each checkpoint on the corpus, ascending by step.")
    missing_steps: list[int] = Field(description="Steps of checkpoints with no run on the corpus.")


class SeriesCheckpointRef(BaseModel):
    id: int
    step: int
    tokens_seen: int | None
    created_at: UtcDateTime


class SeriesDetail(BaseModel):
    id: int
    name: str
    description: str
    experiment_id: int | None
    job_id: int | None = Field(description="The training job that writes or wrote the series, if trained here.")
    n_checkpoints: int
    checkpoints: list[SeriesCheckpointRef] = Field(description="Ascending by step; at most the first 1000 "
                                                               "(a series' cap) when it has more.")
    n_corpora: int = Field(description="Corpora any checkpoint of the series was scored on.")
    corpora: list[SeriesCorpus] = Field(description="Most recently scored first; at most 100.")


class SeriesScoreRequest(BaseModel):
    options: RunOptions = Field(default_factory=RunOptions)


class SeriesScoring(BaseModel):
    created: list[int] = Field(description="Runs created now, ascending by step.")
    existing: list[int] = Field(description="Runs that existed with these options (their failed shards queued again).")


class SeriesCheckpoints(BaseModel):
    series_id: int
    corpus_id: int
    items: list[SeriesCheckpointRun] = Field(description="The series' runs on the corpus, ascending by step.")
    aligned: bool = Field(description="Whether the statistics across checkpoints can use these runs: one set of "
                                      "options and one tokenizer, at least two checkpoints, every run done.")
    problem: str | None = Field(description="Why not, when not: the error the statistics answer with.")
    options: RunOptions | None = Field(description="The runs' scoring options, when they share them.")


class SeriesTrajectory(BaseModel):
    """One document at every step: arrays [step][token] (p = exp(logprob) is left to the client)."""

    series_id: int
    corpus_id: int
    document_id: int
    n_tokens: int
    steps: list[int]
    run_ids: list[int] = Field(description="The run of each step.")
    token_id: list[int]
    text: list[str] = Field(description="Display text of each token, as in a run's document view.")
    char_start: list[int]
    char_end: list[int]
    logprob: list[list[float]] = Field(description=f"log p of the true token per step and token, {ROUNDED}.")
    rank: list[list[int]] = Field(description="Rank of the true token per step and token (0 = the model's top-1).")
    entropy: list[list[float]] = Field(description=f"Entropy of the prediction (nats) per step and token, {ROUNDED}.")
    top1_logprob: list[list[float]] = Field(description=(
        "log p of the model's top-1 prediction per step, only for the tokens whose rank is above 0 at that "
        f"step, in token order (where the rank is 0 the top-1 is the true token: its log p is logprob's), {ROUNDED}. "
        "With p, it gives the margin p(top-1) − p at every step."))


class TokenTrajectory(BaseModel):
    """One token occurrence at every step, with the model's top-k alternatives there ([step][k])."""

    series_id: int
    corpus_id: int
    document_id: int
    position: int
    token_id: int
    text: str
    steps: list[int]
    run_ids: list[int]
    p: list[float] = Field(description=f"p of the true token per step, {ROUNDED} (as are loss, entropy, top_logprobs).")
    loss: list[float]
    rank: list[int]
    entropy: list[float]
    top_ids: list[list[int]]
    top_logprobs: list[list[float]]
    top_text: list[list[str]] = Field(description="Display text of each alternative (empty until a worker has "
                                                  "stored the tokenizer's vocabulary).")
    context_before: ContextBefore
    context_after: ContextAfter


class TransitionQuestion(BaseModel):
    steps: list[int] = Field(description="Every scored step of the series.")
    step_a: int
    step_b: int
    run_a: int
    run_b: int
    tau: float = Field(description="Loss threshold (nats): H when the loss is above it, else L.")


class SeriesTransitions(TransitionQuestion):
    total: int
    documents: int
    counts: dict[Cell, int] = Field(description="Occurrences per cell: the state at step a, then at step b.")
    shares: dict[Cell, float]
    matrix: list[list[int]] = Field(description="Rows: H, L at step a; columns: H, L at step b.")


class TransitionOccurrence(BaseModel):
    document_id: int
    position: int = Field(description="Token index in the document.")
    token_id: int
    text: str = Field(description="Display text of the token.")
    char_start: int
    char_end: int
    context_before: ContextBefore
    context_after: ContextAfter
    loss_a: float = Field(description=f"Loss at step a, {ROUNDED}.")
    loss_b: float = Field(description=f"Loss at step b, {ROUNDED}.")


class TransitionOccurrences(TransitionQuestion):
    cell: Cell
    items: list[TransitionOccurrence] = Field(description="In (document id, position) order.")
    total: int
    offset: int
    limit: int


class StepCounts(BaseModel):
    counts: list[int] = Field(description="Occurrences learned at each step, aligned with `steps`.")
    never: int = Field(description="Occurrences not easy at the last step.")
    tokens: int


class BucketStepCounts(StepCounts):
    bucket: int = Field(description="Token-frequency bucket: 0 holds the rarest types; buckets hold ≈ equal token mass.")


class SeriesLearnedAt(BaseModel):
    steps: list[int]
    run_ids: list[int]
    tau_easy: float = Field(description="An occurrence is easy at a step when p ≥ tau_easy.")
    overall: StepCounts
    by_bucket: list[BucketStepCounts]


class RegionCount(BaseModel):
    region: Region
    occurrences: int
    types: int = Field(description="Token types (with at least min_count occurrences) whose means fall in the region.")


class CartographyPoints(BaseModel):
    """A uniform sample of token occurrences as parallel arrays (index i = point i)."""

    occurrences: int = Field(description="Occurrences in the corpus, of which `shown` are sampled.")
    shown: int
    document_id: list[int]
    position: list[int]
    token_id: list[int]
    text: list[str]
    confidence: list[float] = Field(description=f"Mean p over the steps, {ROUNDED}.")
    variability: list[float] = Field(description=f"Standard deviation of p over the steps, {ROUNDED}.")
    correctness: list[float] = Field(description=f"Share of steps with rank 0, {ROUNDED}.")
    forgetting: list[int] = Field(description="Steps ranked first and not at the next step.")
    region: list[int] = Field(description="Index into `region_names`.")


class TypeCartography(BaseModel):
    token_id: int
    text: str = Field(description="Display text of the type's first occurrence in the corpus.")
    count: int
    confidence: float = Field(description=f"Means over the type's occurrences, {ROUNDED} (as are the next two).")
    variability: float
    correctness: float
    forgetting: float = Field(description="Mean forgetting events per occurrence.")
    region: Region


class TypeCartographyPage(BaseModel):
    items: list[TypeCartography] = Field(description="Most frequent first (ties by token id).")
    total: int
    offset: int
    limit: int
    min_count: int


class SeriesCartography(BaseModel):
    steps: list[int]
    run_ids: list[int]
    confidence_threshold: float
    variability_threshold: float
    region_names: list[Region]
    regions: list[RegionCount]
    points: CartographyPoints
    types: TypeCartographyPage

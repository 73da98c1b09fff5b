"""Model A against model B on one corpus: Δ = log p_B − log p_A per token or character-span segment."""

from __future__ import annotations

from pydantic import BaseModel, Field

ALIGNMENT = ("'token' (the runs stored the same token ids: one unit per token) or 'segment' (units are the "
             "character spans where both tokenizations have a boundary)")


class ComparedRun(BaseModel):
    run_id: int
    checkpoint_id: int
    series: str
    step: int
    tokenizer_fingerprint: str


class CompareBucket(BaseModel):
    """A's tokens in one bucket: their count, mean loss under A and B (B's as loss_A − Δ share) and the
    share of them where B gives more probability."""

    label: str | None = None
    bucket: int | None = None
    tokens: int
    mean_loss_a: float | None
    mean_loss_b: float | None
    mean_delta: float | None
    b_wins: float | None


class ExtremeUnit(BaseModel):
    document_id: int
    unit: int = Field(description="Index of the unit (token or segment) in its document.")
    delta: float
    char_start: int
    char_end: int
    logprob_a: float
    logprob_b: float
    text: str
    context_before: str
    context_after: str


class RunCalibration(BaseModel):
    run_id: int
    ece: float
    brier: float
    top1_accuracy: float
    mean_loss: float
    reliability: dict | None = Field(description="The run summary's reliability diagram (15 bins).")


class CompareSummary(BaseModel):
    run_a: ComparedRun
    run_b: ComparedRun
    corpus_id: int
    alignment: str = Field(description=f"{ALIGNMENT}; 'mixed' when documents differ.")
    documents: dict[str, int] = Field(description="Documents aligned token by token and by segments.")
    tokens_a: int
    tokens_b: int
    units: int
    n_chars: int
    total_logprob_a: float
    total_logprob_b: float
    total_delta: float = Field(description="Σ log p_B − Σ log p_A over the corpus (nats).")
    mean_loss_a: float = Field(description="Per token of A's own tokenization.")
    mean_loss_b: float
    bits_per_char_a: float | None = Field(description="Σ loss / (characters · ln 2): comparable across tokenizers.")
    bits_per_char_b: float | None
    mean_delta_p: float | None = Field(description="Mean p_B − p_A per token; only when every document is token-aligned.")
    rank_buckets: list[CompareBucket] = Field(description="By GLTR bucket of A's rank.")
    frequency_buckets: list[CompareBucket] = Field(description="By frequency bucket of A's token type.")
    b_wins_most: list[ExtremeUnit]
    b_loses_most: list[ExtremeUnit]
    calibration_a: RunCalibration
    calibration_b: RunCalibration


class CompareUnits(BaseModel):
    char_start: list[int]
    char_end: list[int]
    text: list[str]
    logprob_a: list[float] = Field(description="Σ log p of A's tokens in the unit.")
    logprob_b: list[float]
    delta: list[float]
    delta_p: list[float] | None = Field(description="p_B − p_A; token alignment only.")


class CompareRunTokens(BaseModel):
    run_id: int
    n_tokens: int
    unit: list[int] = Field(description="The unit each token belongs to.")
    token_id: list[int]
    text: list[str]
    logprob: list[float]
    rank: list[int]
    top_ids: list[list[int]]
    top_logprobs: list[list[float]]
    top_text: list[list[str]]


class CompareDocument(BaseModel):
    run_a: ComparedRun
    run_b: ComparedRun
    document_id: int
    alignment: str = Field(description=ALIGNMENT)
    n_units: int
    total_delta: float
    units: CompareUnits
    a: CompareRunTokens
    b: CompareRunTokens

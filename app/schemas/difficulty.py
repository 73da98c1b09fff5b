"""What makes a token hard: agreement between definitions, and a run's token types with their means."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.analytics.hardness_sample import SAMPLE_CAP


class DifficultyAgreement(BaseModel):
    run_id: int
    other_run_id: int | None = Field(description="The run of the pair definition (excess loss or loss drop), if any.")
    fraction: float = Field(description="Share of tokens in each definition's hardest set.")
    definitions: list[str] = Field(description="Row and column order of the matrices.")
    n_tokens: int = Field(description="Every token of the run; the means are over all of them.")
    sampled: bool = Field(description=(
        f"True when the run has more tokens than the sample cap ({SAMPLE_CAP:,}): ρ and the overlaps are then "
        "computed on a uniform sample of n_sampled tokens, the same tokens on every request and in every "
        "run of the corpus (chosen by a hash of document and position)."))
    n_sampled: int = Field(description="Tokens that ρ and the overlaps are computed on (n_tokens when not sampled).")
    means: dict[str, float | None] = Field(description="Mean of each definition over every token.")
    spearman: list[list[float | None]] | None = Field(description="Spearman's ρ; None where a definition is constant.")
    spearman_standard_error: list[list[float | None]] | None = Field(description=(
        "Standard error of each ρ from sampling, (1 − ρ²)·√(1.06/(n_sampled − 3))·√(1 − n_sampled/n_tokens); "
        "None when ρ is computed on every token."))
    hardest_overlap: list[list[float | None]] | None = Field(description="|H_i ∩ H_j| / |H_i| of the hardest sets.")


class RunType(BaseModel):
    token_id: int
    text: str
    count: int
    frequency_rank: int = Field(description="1 = the most frequent type (ties by token id).")
    mean_p: float
    mean_loss: float
    mean_one_minus_p: float
    mean_rank: float
    mean_entropy: float
    mean_surprise: float
    mean_margin: float


class RunTypes(BaseModel):
    run_id: int
    sort: str
    descending: bool
    text: str | None
    items: list[RunType]
    total: int = Field(description="Types matching the text filter.")
    types: int = Field(description="Every type of the run.")
    offset: int
    limit: int


class TypeOccurrence(BaseModel):
    document_id: int
    position: int
    text: str
    char_start: int
    char_end: int
    context_before: str
    context_after: str
    loss: float
    p: float


class TypeOccurrences(BaseModel):
    run_id: int
    token_id: int
    items: list[TypeOccurrence]
    total: int
    offset: int
    limit: int

"""What makes a token hard: agreement between definitions, and a run's token types with their means."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DifficultyAgreement(BaseModel):
    run_id: int
    other_run_id: int | None = Field(description="The run of the pair definition (excess loss or loss drop), if any.")
    fraction: float = Field(description="Share of tokens in each definition's hardest set.")
    definitions: list[str] = Field(description="Row and column order of the matrices.")
    n_tokens: int
    means: dict[str, float | None]
    spearman: list[list[float | None]] | None = Field(description="Spearman's ρ; None where a definition is constant.")
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

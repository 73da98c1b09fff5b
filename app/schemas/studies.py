"""What the Study page reads: studies (one experiment per seed, the same losses in each) and one study's
across-seed results, with the report's table cells as text (app.services.study_table) beside the
numbers they are made of."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.common import UtcDateTime


class StudySummary(BaseModel):
    name: str
    seeds: list[int]
    losses: list[str] = Field(description="The losses as the study groups them (rho1 without its per-seed reference).")
    experiments: int = Field(description="Experiments of the study: one per seed.")
    created_at: UtcDateTime = Field(description="When its first experiment was made.")
    done: bool = Field(description="Every training job done and every checkpoint's scoring finished.")


class Spread(BaseModel):
    mean: float | None
    sd: float | None = Field(description="Sample standard deviation over seeds; None below two seeds.")
    n: int = Field(description="Seeds with a value.")


class PairedDifference(Spread):
    """The difference from ce, paired by seed, with its 95% t half-width."""

    half_width: float | None
    resolved: bool = Field(description="|mean| beyond the half-width: beyond the seed noise.")


class MetricSummary(Spread):
    vs_baseline: PairedDifference | None = Field(None, description="None for ce itself.")


class CollapseFlag(BaseModel):
    seed: int
    kind: str = Field(description="heldout_rise, loss_spike or grad_spike.")
    step: int


class DeltaCell(BaseModel):
    text: str
    noise: Literal["beyond", "within"] | None = Field(
        description="Beyond the seed noise (the text ends with *) or within it; None without an interval.")


class StudyRow(BaseModel):
    """One loss: the report's summary-table cells, its numbers per metric, and its collapse flags."""

    loss: str
    cells: list[str] = Field(description="The report's cells, in the order of StudyOut.table_header.")
    metrics: dict[str, MetricSummary]
    collapse: list[CollapseFlag]
    deltas: list[DeltaCell] | None = Field(description="The differences table's cells (None for ce).")


class HeldoutCurve(BaseModel):
    """Held-out CE at each checkpoint step after 0: mean and sd over the seeds."""

    loss: str
    step: list[int]
    mean: list[float | None]
    sd: list[float | None]


class Setting(BaseModel):
    name: str
    value: str


class StudyMember(BaseModel):
    id: int
    name: str
    seed: int | None


class Continuation(BaseModel):
    loss: str
    text: str


class SamplePrompt(BaseModel):
    prompt: str
    continuations: list[Continuation]


class StudyOut(BaseModel):
    name: str
    in_progress: bool = Field(description="Some training or scoring is not finished: the numbers are partial.")
    seeds: list[int]
    command: str = Field(description="The command that reruns the study.")
    versions: dict[str, str | int | float | bool | None]
    settings: list[Setting] = Field(description="The report's settings rows.")
    experiments: list[StudyMember]
    baseline: str
    table_header: list[str]
    delta_header: list[str] = Field(description="Headers of StudyRow.deltas, after the loss.")
    rows: list[StudyRow]
    nucleus_levels: list[float] = Field(description="The top-p levels of the coverage_<p> metrics.")
    heldout: list[HeldoutCurve]
    samples: list[SamplePrompt] = Field(description="The first seed's final models continuing the same prompts.")

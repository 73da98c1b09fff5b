from __future__ import annotations

from pydantic import BaseModel, Field


class Vocabulary(BaseModel):
    """The fixed names the API accepts and returns, in their canonical order (app.vocab and the
    training request's tokenizers): what the frontend builds its choices and badges from."""

    job_statuses: list[str]
    live_statuses: list[str] = Field(description="Statuses of jobs still to finish, in job_statuses order.")
    terminal_statuses: list[str] = Field(description="Statuses of finished jobs, in job_statuses order.")
    job_kinds: list[str]
    window_policies: list[str]
    dtypes: list[str] = Field(description="Dtypes a run can load the weights in.")
    tokenizers: list[str] = Field(description="Tokenizers a training job can use.")
    checkpoint_formats: list[str]
    checkpoint_file_suffixes: list[str] = Field(description="File name endings an uploaded checkpoint may hold.")
    token_fields: list[str] = Field(description="Per-token fields stored by a run, in storage order.")

"""The training request: one Pydantic model, the single definition of what a `train` job is asked to do.

Everything else is derived from its fields: the API bodies (TrainingJobCreate and ExperimentCreate
share the option fields of TrainingOptions), the command line (focalscope.model_options makes one
flag per field), the job payload the worker parses (TrainingRequest) and the checkpoint fingerprint
(every field not marked Bookkeeping). Adding a knob is adding one field here.

Single-field limits are `Field` constraints; the checks that span fields (a checkpoint plan that
fits, seq_len within the preset's context, vocab_size with the SmolLM2 tokenizer) and the loss spec
parser are validators with messages written for the person who typed the request. After validation,
options left None hold the preset's values, so a validated request says everything that is trained.
No torch here: the API imports this.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.db.base import MAX_INTEGER
from app.schemas.run import MAX_WINDOW
from app.training_specs import (
    LOSS_FORMS, MAX_BATCH_SIZE, MAX_CHECKPOINTS, MAX_STEPS, MAX_VOCAB_SIZE, MIN_SEQ_LEN, MIN_VOCAB_SIZE, PRESETS,
    SERIES_NAME, SMOLLM2_VOCAB_SIZE, TOKENIZER_BPE, TOKENIZER_SMOLLM2, TOKENIZERS, parse_loss_spec, save_steps,
)

# An experiment trains one model per loss; more than this is a sweep, better split up.
MAX_EXPERIMENT_LOSSES = 16
# Leaves room for "-<loss spec>" within the 150 characters of a series name.
MAX_EXPERIMENT_NAME = 80
MAX_SEED = 2**63 - 1  # a signed 64-bit integer, what torch.manual_seed takes

# The choices are app.training_specs' preset names and tokenizers (the OpenAPI enum, the CLI choices).
PresetName = Literal[tuple(PRESETS)]
TokenizerName = Literal[TOKENIZERS]
LOSS_USAGE = ", ".join(usage for _, usage in LOSS_FORMS.values())


@dataclass(frozen=True)
class Bookkeeping:
    """Field metadata: the field says where a result is filed or scored, not what is trained, so it
    stays out of the checkpoint fingerprint. Every other field is in it, a new one included."""


@dataclass(frozen=True)
class IdOrName:
    """Field metadata: the id of a named `kind` of resource; the command line takes its id or name."""

    kind: str


def _problem(message: str) -> PydanticCustomError:
    # A custom error keeps the message as written (a ValueError would get "Value error, " in front).
    return PydanticCustomError("invalid_training_request", message)


def _canonical_loss(text: str) -> str:
    try:
        return parse_loss_spec(text).text
    except ValueError as exc:
        raise _problem(str(exc)) from None


class SaveSchedule(BaseModel):
    """How long to train and when to checkpoint (each checkpoint is scored on the eval corpus).
    Lax, unlike the request: GET /training/save-steps reads it from a query string."""

    steps: int = Field(300, ge=1, le=MAX_STEPS, description="Optimizer steps.")
    save_every: int = Field(50, ge=1, le=MAX_STEPS, description="Checkpoint (and score on the eval corpus) every this many steps.")

    @model_validator(mode="after")
    def _checkpoints_fit(self) -> Self:
        if self.save_every > self.steps:
            raise _problem(f"save_every ({self.save_every}) must not exceed steps ({self.steps})")
        if self.steps // self.save_every + 2 > MAX_CHECKPOINTS:
            raise _problem(
                f"steps / save_every = {self.steps // self.save_every} checkpoints; at most {MAX_CHECKPOINTS - 2} "
                "(each is saved and scored): raise save_every"
            )
        return self

    def save_steps(self) -> list[int]:
        return save_steps(self.steps, self.save_every)


class TrainingOptions(SaveSchedule):
    """What a single training job and every series of an experiment share. None means "the preset's
    value", filled in by validation."""

    # Strict: a whole number must be one (no 2.0, "2" or true), as the trainer will use it.
    model_config = ConfigDict(extra="forbid", strict=True)

    corpus_id: Annotated[int, IdOrName("corpus"), Field(ge=1, le=MAX_INTEGER, description="Corpus the model is trained on.")]
    eval_corpus_id: Annotated[int | None, IdOrName("corpus"), Bookkeeping(), Field(
        ge=1, le=MAX_INTEGER, description="Held-out corpus every checkpoint is scored on.")] = None
    preset: PresetName = Field("tiny", description="Model size and shape (GET /training/presets lists them).")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seeds the initial weights and the batch order.")
    tokenizer: TokenizerName = Field(
        TOKENIZER_BPE, description="bpe: trained on the corpus; smollm2: SmolLM2's 49,152 tokens.")
    vocab_size: int | None = Field(
        None, ge=MIN_VOCAB_SIZE, le=MAX_VOCAB_SIZE, description="BPE vocabulary size; default: the preset's.")
    lr: float | None = Field(None, gt=0, le=1, allow_inf_nan=False, description="Peak learning rate; default: the preset's.")
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH_SIZE, description="Sequences per step; default: the preset's.")
    # Bounded loosely here: the validator below says which preset's context it exceeds.
    seq_len: int | None = Field(None, ge=MIN_SEQ_LEN, le=MAX_WINDOW,
                                description="Tokens per sequence; default: the preset's context.")

    @model_validator(mode="after")
    def _fits_the_preset(self) -> Self:
        preset = PRESETS[self.preset]
        smollm2 = self.tokenizer == TOKENIZER_SMOLLM2
        problems = []
        if self.seq_len is not None and self.seq_len > preset.context:
            problems.append(f"seq_len {self.seq_len} exceeds the {preset.name} preset's context of {preset.context} tokens")
        if smollm2 and self.vocab_size is not None and self.vocab_size != SMOLLM2_VOCAB_SIZE:
            problems.append(f"vocab_size applies to the bpe tokenizer only (smollm2 has {SMOLLM2_VOCAB_SIZE} tokens)")
        if problems:
            raise _problem("; ".join(problems))
        self.vocab_size = SMOLLM2_VOCAB_SIZE if smollm2 else self.vocab_size or preset.vocab_size
        self.lr = float(self.lr or preset.lr)
        self.batch_size = self.batch_size or preset.batch_size
        self.seq_len = self.seq_len or preset.context
        return self


class TrainingJobCreate(TrainingOptions):
    """POST /training/jobs: one model, one loss, into a new series."""

    series: Annotated[str, Bookkeeping(), Field(
        description="Name of the new model series: 1–150 letters, digits, '.', '_' or '-'.")]
    loss: str = Field("ce", description=f"Loss spec: {LOSS_USAGE}.")

    @field_validator("series")
    @classmethod
    def _series_name(cls, name: str) -> str:
        if not SERIES_NAME.match(name) or ".." in name:
            raise _problem(
                f"series name {name!r}: use 1–150 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return name

    @field_validator("loss")
    @classmethod
    def _canonical_loss(cls, text: str) -> str:
        return _canonical_loss(text)


class TrainingRequest(TrainingJobCreate):
    """The payload of a `train` job: the API's request plus the experiment it belongs to."""

    experiment_id: Annotated[int | None, Bookkeeping(), Field(ge=1, le=MAX_INTEGER, description="Experiment of the series.")] = None

    def fingerprint(self) -> str:
        """Hash of everything that changes what is trained: a resumed job continues only checkpoints
        with the same fingerprint."""
        trained = {name: getattr(self, name) for name in trained_fields(type(self))}
        return hashlib.sha256(json.dumps(trained, sort_keys=True).encode()).hexdigest()[:32]


class ExperimentCreate(TrainingOptions):
    """POST /experiments: one series per loss, everything else (the seed included) the same."""

    name: str = Field(description=f"Experiment name, prefix of its series' names: 1–{MAX_EXPERIMENT_NAME} letters, "
                                  "digits, '.', '_' or '-'.")
    losses: list[str] = Field(min_length=1, max_length=MAX_EXPERIMENT_LOSSES,
                              description="Loss specs, one series each, e.g. ce and focal:2.")

    @field_validator("name")
    @classmethod
    def _experiment_name(cls, name: str) -> str:
        name = name.strip()
        if not SERIES_NAME.match(name) or ".." in name or len(name) > MAX_EXPERIMENT_NAME:
            raise _problem(
                f"experiment name {name!r}: use 1–{MAX_EXPERIMENT_NAME} letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (it prefixes the series names)")
        return name

    @field_validator("losses")
    @classmethod
    def _distinct_losses(cls, texts: list[str]) -> list[str]:
        canonical: list[str] = []
        for text in texts:
            spec = _canonical_loss(text)
            if spec in canonical:
                raise _problem(f"loss {spec} is listed twice")
            canonical.append(spec)
        return canonical


class SaveStepsOut(BaseModel):
    steps: int
    save_every: int
    save_steps: list[int] = Field(description="Steps with a checkpoint: 0, every save_every, and the last.")


class LossForm(BaseModel):
    name: str
    usage: str


def trained_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `model` that change what is trained: all but those marked Bookkeeping."""
    return tuple(name for name, info in model.model_fields.items()
                 if not any(isinstance(m, Bookkeeping) for m in info.metadata))


def request_problems(exc: ValidationError) -> str:
    """Every problem of a rejected request on one line, each led by its field: "steps: Input should be ..."."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in exc.errors())

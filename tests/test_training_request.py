"""The training request (app.schemas.training) is the one definition of a `train` job: its checks and
their messages, the defaults it fills in, the checkpoint-step rule, and what is derived from its
fields — the command line's options, the API schema and the checkpoint fingerprint — which a new
field reaches without another edit. No database, no torch."""

from __future__ import annotations

import argparse
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import Field, ValidationError

from app.api.errors import install_error_handlers
from app.schemas.training import ExperimentCreate, TrainingJobCreate, TrainingRequest, request_problems, trained_fields
from app.training_specs import save_steps
from focalscope.cli import build_parser
from focalscope.model_options import add_model_options, model_values


@pytest.mark.parametrize(("fields", "message"), [
    ({"loss": "focal:-1"}, "loss: loss 'focal:-1': γ (gamma) must be ≥ 0"),
    ({"loss": "polyfocal:x"}, "polyfocal needs 2 parameters (ε (epsilon), γ (gamma)), got 1"),
    ({"preset": "huge"}, "preset: Input should be 'tiny', 'small', 'base', 'tiny-llama', 'small-llama' or 'base-llama'"),
    ({"steps": 0}, "steps: Input should be greater than or equal to 1"),
    ({"steps": 10, "save_every": 20}, "save_every (20) must not exceed steps (10)"),
    ({"steps": 100_000, "save_every": 10}, "steps / save_every = 10000 checkpoints; at most 998"),
    ({"save_every": 0}, "save_every: Input should be greater than or equal to 1"),
    ({"series": "../escape"}, "series: series name '../escape': use 1–150 letters"),
    ({"seq_len": 4096}, "seq_len 4096 exceeds the tiny preset's context of 256 tokens"),
    ({"tokenizer": "smollm2", "vocab_size": 1024}, "vocab_size applies to the bpe tokenizer only"),
    ({"tokenizer": "word"}, "tokenizer: Input should be 'bpe' or 'smollm2'"),
    ({"lr": 0}, "lr: Input should be greater than 0"),
    ({"lr": float("nan")}, "lr: Input should be a finite number"),
    ({"steps": 2.5}, "steps: Input should be a valid integer"),
    ({"steps": True}, "steps: Input should be a valid integer"),
    ({"gamma": 2}, "gamma: Extra inputs are not permitted"),
])
def test_bad_requests_fail_with_clear_messages(fields, message):
    with pytest.raises(ValidationError) as error:
        TrainingRequest(**{"corpus_id": 1, "series": "s", "steps": 10, "save_every": 5, **fields})
    assert message in request_problems(error.value)


def test_problems_are_reported_together_and_defaults_filled():
    with pytest.raises(ValidationError) as error:
        TrainingRequest(series="s", steps=0, loss="nope", preset="huge")
    assert [e["loc"] for e in error.value.errors()] == [("steps",), ("corpus_id",), ("preset",), ("loss",)]
    request = TrainingRequest(corpus_id=1, series="s", loss="Focal:2.0", steps=100, save_every=30)
    assert (request.loss, request.vocab_size, request.batch_size, request.seq_len, request.lr) == (
        "focal:2", 2048, 16, 256, 3e-3)
    assert request.save_steps() == [0, 30, 60, 90, 100]
    assert TrainingRequest(corpus_id=1, series="s", tokenizer="smollm2").vocab_size == 49152
    # The job payload parses back to the same request (the worker's side of the contract).
    assert TrainingRequest.model_validate(request.model_dump()) == request


def test_experiment_requests_share_the_options_and_check_the_losses():
    experiment = ExperimentCreate(name=" shake ", corpus_id=1, losses=["ce", "Focal:2"], preset="small")
    assert (experiment.name, experiment.losses, experiment.vocab_size, experiment.lr) == (
        "shake", ["ce", "focal:2"], 8192, 1e-3)
    for fields, message in (({"losses": ["ce", "CE"]}, "losses: loss ce is listed twice"),
                            ({"losses": []}, "losses: List should have at least 1 item"),
                            ({"losses": ["ce"] * 17}, "losses: List should have at most 16 items"),
                            ({"name": "a b"}, "name: experiment name 'a b': use 1–80 letters"),
                            ({"name": "a..b"}, "name: experiment name 'a..b'"),
                            ({"steps": 0}, "steps: Input should be greater than or equal to 1")):
        with pytest.raises(ValidationError) as error:
            ExperimentCreate(**{"name": "e", "corpus_id": 1, "losses": ["ce"], **fields})
        assert message in request_problems(error.value)


@pytest.mark.parametrize(("steps", "save_every", "expected"), [
    (300, 50, [0, 50, 100, 150, 200, 250, 300]),
    (100, 30, [0, 30, 60, 90, 100]),
    (5, 5, [0, 5]),
    (1, 1, [0, 1]),
])
def test_save_steps(steps, save_every, expected):
    assert save_steps(steps, save_every) == expected


def test_fingerprint_covers_what_is_trained():
    request = TrainingRequest(corpus_id=3, series="s", eval_corpus_id=4, experiment_id=9, loss="Focal:2", steps=100,
                              save_every=30, seed=5)
    # The value the hand-written field list gave before the request became one model: checkpoints
    # already on disk keep resuming.
    assert request.fingerprint() == "b619023d54adaa48d89c03addf07336f"
    assert set(trained_fields(TrainingRequest)) == {
        "corpus_id", "preset", "loss", "steps", "save_every", "seed", "tokenizer", "vocab_size", "lr", "batch_size",
        "seq_len"}
    filed_elsewhere = request.model_copy(update={"series": "t", "eval_corpus_id": None, "experiment_id": None})
    assert filed_elsewhere.fingerprint() == request.fingerprint()
    assert request.model_copy(update={"seed": 6}).fingerprint() != request.fingerprint()


class WithDropout(TrainingRequest):
    """The request with a knob it does not have: what adding a field to the model brings along."""

    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout probability of every layer.")


def test_a_new_field_reaches_the_command_line_the_api_and_the_fingerprint():
    parser = argparse.ArgumentParser()
    add_model_options(parser, WithDropout)
    assert re.search(r"--dropout DROPOUT\s+Dropout probability of every layer \(default 0.0\)", parser.format_help())
    args = parser.parse_args(["--corpus", "macbeth", "--series", "s", "--dropout", "0.1"])
    request = WithDropout(**model_values(args, WithDropout, {"corpus": {"macbeth": 7}.__getitem__}))
    assert (request.corpus_id, request.series, request.dropout) == (7, "s", 0.1)

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/train")
    def train(body: WithDropout) -> dict:
        return {"dropout": body.dropout}

    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["WithDropout"]["properties"]["dropout"]
        assert (schema["type"], schema["minimum"], schema["exclusiveMaximum"], schema["default"]) == ("number", 0, 1, 0.0)
        assert schema["description"] == "Dropout probability of every layer."
        assert client.post("/train", json={"corpus_id": 1, "series": "s", "dropout": 0.25}).json() == {"dropout": 0.25}
        refused = client.post("/train", json={"corpus_id": 1, "series": "s", "dropout": 1.5})
        assert refused.status_code == 422
        assert refused.json()["error"]["message"] == "dropout: Input should be less than 1"

    assert "dropout" in trained_fields(WithDropout)
    assert request.fingerprint() != request.model_copy(update={"dropout": 0.2}).fingerprint()


def test_the_commands_take_every_field_of_their_request():
    parser = build_parser()
    train = parser.parse_args(["train", "--corpus", "macbeth", "--series", "s", "--vocab-size", "1024"])
    assert set(TrainingJobCreate.model_fields) <= set(vars(train)) and train.vocab_size == 1024
    experiment = parser.parse_args(["experiment", "--corpus", "macbeth", "--losses", "ce, focal:2", "--seed", "3"])
    assert set(ExperimentCreate.model_fields) <= set(vars(experiment))
    assert (experiment.losses, experiment.seed, experiment.preset) == (["ce", "focal:2"], 3, "tiny")
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--corpus", "c", "--series", "s", "--tokenizer", "word"])

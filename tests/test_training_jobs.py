"""Training jobs: the SmolLM2 tokenizer (from the GGUF) saved with the checkpoints, payloads that fail
permanently, series names that are taken."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from app.assets import smollm2_gguf
from app.models.job import Job
from app.schemas.training import TrainingRequest
from app.services import queue
from app.services.errors import Conflict
from app.services.training import enqueue_training
from app.training_specs import PRESETS, train_directory
from app.vocab import DONE, FAILED, KIND_TRAIN
from tests.support.data import macbeth_scenes
from tests.support.gguf_tokenizer import smollm2_bpe
from tests.support.training import SQLITE_ONLY, enqueue
from workers.loop import Worker
from workers.training.data import tokenize_corpus


@pytest.mark.slow
@SQLITE_ONLY
def test_smollm2_tokenizer_run(settings, sessions, macbeth_corpora):
    """The SmolLM2 tokenizer (from the GGUF) is saved with the checkpoints; documents are framed
    <|im_start|> … <|im_end|> (BOS 1, the scorer's prefix; EOS 2)."""
    train_id, _, _ = macbeth_corpora
    job_id = enqueue(sessions, settings, corpus_id=train_id, series="smol", tokenizer="smollm2", vocab_size=None,
                     steps=2, save_every=2)
    worker = Worker(settings, kinds=(KIND_TRAIN,))
    assert worker.run_one()
    worker.engine.dispose()
    with sessions() as session:
        assert session.get(Job, job_id).status == DONE
    path = train_directory(settings.data_dir, "smol") / "step-000002"
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    assert (tokenizer.is_fast, tokenizer.bos_token_id, tokenizer.eos_token_id, len(tokenizer)) == (True, 1, 2, 49152)
    assert tokenizer.model_max_length == 256 and not (path / "chat_template.jinja").exists()
    config = json.loads((path / "config.json").read_text())
    assert (config["vocab_size"], config["bos_token_id"], config["eos_token_id"]) == (49152, 1, 2)
    meta = json.loads((path / "training.json").read_text())
    assert (meta["tokenizer"], meta["vocab_size"], meta["n_params"]) == ("smollm2", 49152, PRESETS["tiny"].params["smollm2"])
    # The vocabulary's cuts, against SmolLM2's BPE built independently from the GGUF header.
    passage = macbeth_scenes()[2][:3000] + " Thane of Glamis, café, 😀"
    expected = smollm2_bpe(smollm2_gguf()).encode(passage)
    ours = tokenizer(passage, add_special_tokens=False, return_offsets_mapping=True)
    assert (ours["input_ids"], ours["offset_mapping"]) == (expected.ids, expected.offsets)
    stream = tokenize_corpus(tokenizer, ["Fair is foul", "and foul is fair"])
    assert stream.ids.tolist() == [1, *tokenizer("Fair is foul", add_special_tokens=False)["input_ids"], 2,
                                   1, *tokenizer("and foul is fair", add_special_tokens=False)["input_ids"], 2]


@SQLITE_ONLY
def test_job_with_missing_corpus_or_bad_payload_fails_permanently(settings, sessions, macbeth_corpora):
    train_id, _, _ = macbeth_corpora
    with sessions() as session:
        missing = queue.enqueue(session=session, kind=KIND_TRAIN, progress_total=5,
                                payload={"corpus_id": 999, "series": "ghost", "steps": 5, "save_every": 5})
        bad = queue.enqueue(session=session, kind=KIND_TRAIN, progress_total=5,
                            payload={"corpus_id": train_id, "series": "bad", "loss": "focal:-1", "steps": 5,
                                     "save_every": 5})
        unknown = queue.enqueue(session=session, kind=KIND_TRAIN, progress_total=5,
                                payload={"corpus_id": train_id, "series": "odd", "gamma": 2})
        session.commit()
        ids = (missing.id, bad.id, unknown.id)
    worker = Worker(settings, kinds=(KIND_TRAIN,))
    assert worker.run_one() and worker.run_one() and worker.run_one()
    worker.engine.dispose()
    with sessions() as session:
        missing, bad, unknown = (session.get(Job, i) for i in ids)
        # Failed at the first attempt: retrying cannot make a deleted corpus or a bad spec work.
        assert (missing.status, missing.attempts) == (FAILED, 1)
        assert missing.error.startswith("PermanentError: training corpus 999 not found")
        assert (bad.status, bad.attempts) == (FAILED, 1)
        assert "γ (gamma) must be ≥ 0" in bad.error.splitlines()[0]
        assert (unknown.status, unknown.attempts) == (FAILED, 1)
        assert unknown.error.splitlines()[0] == (
            "PermanentError: bad training request: gamma: Extra inputs are not permitted")


# --- series names (the request's own checks: test_training_request.py) ----------------------------

def test_series_conflicts(settings, sessions, macbeth_corpora):
    train_id, _, _ = macbeth_corpora
    enqueue(sessions, settings, corpus_id=train_id, series="taken", steps=5, save_every=5)
    with sessions() as session:
        with pytest.raises(Conflict, match="is being trained already"):
            enqueue_training(session=session, settings=settings,
                             request=TrainingRequest(corpus_id=train_id, series="taken", steps=5, save_every=5))
    leftover = train_directory(settings.data_dir, "stale") / "step-000000"
    leftover.mkdir(parents=True)
    with sessions() as session:
        with pytest.raises(Conflict, match="^models/train/stale in the data directory holds files of an earlier"):
            enqueue_training(session=session, settings=settings,
                             request=TrainingRequest(corpus_id=train_id, series="stale", steps=5, save_every=5))

"""A checkpoint whose tokenizer hangs or crashes when loaded: its scoring job fails with a clear error
after FOCALSCOPE_TOKENIZER_LOAD_TIMEOUT, the same worker then scores a healthy checkpoint, and the
API answers throughout. The hang is the tokenizer library never returning, stood in for by a loader
that blocks until the test releases it (a file that hangs a given tokenizers release is that
release's bug, not something to keep in the test data)."""

from __future__ import annotations

import shutil
import threading

from app.schemas.run import RunOptions
from app.services import checkpoints, corpora, runs
from app.vocab import DONE, FAILED
from tests.support.api import API
from workers import models
from workers.loop import Worker


def test_hostile_tokenizers_fail_their_jobs_and_nothing_else(api, settings, sessions, tiny_llama_dir, tmp_path,
                                                            monkeypatch):
    hanging, crashing, healthy = (shutil.copytree(tiny_llama_dir, tmp_path / name)
                                  for name in ("hanging", "crashing", "healthy"))
    released = threading.Event()
    real_load = models.AutoTokenizer.from_pretrained

    def load(directory, **kwargs):
        if str(directory) == str(hanging):
            released.wait(30)
        if str(directory) in (str(hanging), str(crashing)):
            raise Exception("data did not match any variant of untagged enum ModelWrapper")
        return real_load(directory, **kwargs)

    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", load)
    settings.tokenizer_load_timeout = 0.3
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="c", documents=[corpora.DocumentIn("To be, or not", "a.txt")])
        run_ids = []
        for directory in (hanging, crashing, healthy):  # claimed in this order
            checkpoint, _ = checkpoints.register_checkpoint(session=session, path=directory, series=directory.name)
            run, _ = runs.create_run(session=session, checkpoint_id=checkpoint.id, corpus_id=corpus.id,
                                     options=RunOptions(max_length=16), shard_chars=10_000)
            run_ids.append(run.id)
        session.commit()
    try:
        assert Worker(settings, device="cpu").run_forever(exit_when_idle=True) >= 3
        progress = [api.get(f"{API}/runs/{run_id}").json()["progress"] for run_id in run_ids]
        assert [p["status"] for p in progress] == [FAILED, FAILED, DONE]
        # Server paths in errors are cut to their last part (app/schemas/common.py SERVER_PATH).
        assert progress[0]["errors"][0].startswith(
            f"PermanentError: {hanging.name}: the tokenizer did not load within 0.3 s (FOCALSCOPE_TOKENIZER_LOAD_TIMEOUT)")
        assert progress[1]["errors"][0].startswith(
            f"PermanentError: {crashing.name}: the tokenizer failed to load: data did not match any variant")
        assert api.get(f"{API}/health").json()["status"] == "ok"
    finally:
        released.set()

"""rho1's REFERENCE through the API on both databases: resolved to SERIES@STEP, refused with a 422 when it
names no checkpoint or one trained with another tokenizer."""

from __future__ import annotations

from app.models.checkpoint import Checkpoint, ModelSeries
from tests.support.api import API, error_of, upload


def reference_series(sessions, name: str, training: dict | None, steps=(0, 50, 100)) -> list[int]:
    """A series row with checkpoints at `steps` (rows only: the API checks references without files)."""
    with sessions() as session:
        series = ModelSeries(name=name, meta={"kind": "training", "training": training} if training else {})
        session.add(series)
        session.flush()
        rows = [Checkpoint(series_id=series.id, step=step, format="safetensors", path=f"/nowhere/{name}/{step}",
                           weights_sha256="0" * 64, tokenizer_fingerprint="f" * 64) for step in steps]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def test_rho1_reference_is_resolved_or_refused(api, sessions):
    corpus_id = upload(api, name="train").json()["id"]
    other_corpus = upload(api, name="other").json()["id"]
    same = {"tokenizer": "bpe", "corpus_id": corpus_id, "vocab_size": 512}
    ids = reference_series(sessions, "ref-ce", same)
    reference_series(sessions, "ref-other", same | {"corpus_id": other_corpus})
    reference_series(sessions, "ref-smol", {"tokenizer": "smollm2", "corpus_id": corpus_id, "vocab_size": 49152})
    reference_series(sessions, "ref-outside", None)
    body = {"corpus_id": corpus_id, "steps": 4, "save_every": 2, "vocab_size": 512}

    def post(loss: str, series: str):
        return api.post(f"{API}/training/jobs", json=body | {"loss": loss, "series": series})

    for loss, series, expected in [("rho1:0.6:ref-ce", "a", "rho1:0.6:ref-ce@100"),
                                   ("rho1:0.6:ref-ce@50", "b", "rho1:0.6:ref-ce@50"),
                                   (f"rho1:1:{ids[0]}", "c", "rho1:1:ref-ce@0")]:
        created = post(loss, series)
        assert created.status_code == 201, created.text
        assert api.get(f"{API}/jobs/{created.json()['id']}").json()["payload"]["loss"] == expected
    for loss, fragment in [
        ("rho1:0.6:missing", "rho1 reference 'missing': no such checkpoint"),
        ("rho1:0.6:ref-ce@7", "rho1 reference 'ref-ce@7': no such checkpoint"),
        ("rho1:0.6:ref-other", f"has a different tokenizer: bpe (512 tokens, trained on corpus {other_corpus})"),
        ("rho1:0.6:ref-smol", "has a different tokenizer: smollm2 (49152 tokens)"),
        ("rho1:0.6:ref-outside", "was not trained by focalscope"),
        ("rho1:0:ref-ce", "RATIO must be in (0, 1]"),
        ("rho1:1.2:ref-ce", "RATIO must be in (0, 1]"),
    ]:
        assert fragment in error_of(post(loss, "z"), 422, "invalid_input"), loss
    experiment = {"name": "e", "corpus_id": corpus_id, "losses": ["ce", "rho1:0.5:ref-other"], "steps": 4,
                  "save_every": 2, "vocab_size": 512}
    assert "different tokenizer" in error_of(api.post(f"{API}/experiments", json=experiment), 422, "invalid_input")
    assert api.get(f"{API}/experiments").json()["total"] == 0

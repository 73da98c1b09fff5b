"""Export: a run's tokens as Parquet or CSV (API, streamed; CLI), one row per token, read back with
DuckDB: the totals agree with the API's summary and the values with hand-computed ones."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.run import Run
from app.services import corpora, export, scores, summaries
from app.services.scores import DocumentScores
from tests.support.api import API, error_of

TOP_K = 2
# Two documents with hand-made scores (one token of the second splits 🎭 in two, as byte-level BPE
# does) and an empty one: logprobs ln ½, ln ¼, ln 1, ln ⅛ …
TEXTS = ["Fair is foul", "🎭 ok", ""]
SPANS = [[(0, 4), (4, 7), (7, 12)], [(0, 1), (0, 1), (1, 4)], []]
PROBS = [[0.5, 0.25, 1.0], [0.125, 0.5, 0.8], []]


def _scored_run(sessions) -> int:
    with sessions() as session:
        corpus = corpora.create_corpus(session=session, name="c", documents=[
            corpora.DocumentIn(text=t, source=f"{i}") for i, t in enumerate(TEXTS)])
        series = ModelSeries(name="hand")
        session.add(series)
        session.flush()
        checkpoint = Checkpoint(series_id=series.id, format="safetensors", path="/none", weights_sha256="0" * 64,
                                tokenizer_fingerprint="0" * 64)
        session.add(checkpoint)
        session.flush()
        run = Run(checkpoint_id=checkpoint.id, corpus_id=corpus.id, options={"top_k": TOP_K}, options_key="{}")
        session.add(run)
        session.flush()
        documents = [d for d in corpus.documents]
        results = []
        for document, spans, probs in zip(documents, SPANS, PROBS):
            n = len(probs)
            logprob = np.log(np.array(probs, dtype=np.float64)).astype(np.float32)
            results.append(DocumentScores(document_id=document.id, top_k=TOP_K, arrays={
                "token_id": np.arange(n, dtype=np.int32) + 10, "char_start": np.array([s for s, _ in spans], np.int32),
                "char_end": np.array([e for _, e in spans], np.int32), "logprob": logprob,
                "entropy": np.full(n, 1.5, np.float32), "rank": np.arange(n, dtype=np.int32),
                "top_ids": np.arange(2 * n, dtype=np.int32).reshape(n, 2),
                "top_logprobs": np.stack([logprob, logprob - 1], axis=1), "sum_p2": np.full(n, 0.5, np.float32),
                "context_len": np.arange(1, n + 1, dtype=np.int32)}))
        scores.store_scores(session=session, run_id=run.id, documents=results)
        summaries.compute_summary(session=session, run_id=run.id)
        session.commit()
        return run.id


def _query(sql: str) -> list[tuple]:
    with duckdb.connect() as connection:
        return connection.execute(sql).fetchall()


def test_the_api_streams_parquet_and_csv_that_duckdb_reads_with_the_summarys_totals(api, sessions, tmp_path):
    run_id = _scored_run(sessions)
    summary = api.get(f"{API}/runs/{run_id}").json()["summary"]
    parquet = api.get(f"{API}/runs/{run_id}/export", params={"format": "parquet", "gamma": 2})
    assert parquet.status_code == 200 and parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert parquet.headers["content-disposition"] == f'attachment; filename="run-{run_id}.parquet"'
    (tmp_path / "run.parquet").write_bytes(parquet.content)
    csv = api.get(f"{API}/runs/{run_id}/export", params={"format": "csv", "gamma": 2})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    (tmp_path / "run.csv").write_bytes(csv.content)

    for source in (f"'{tmp_path / 'run.parquet'}'", f"read_csv('{tmp_path / 'run.csv'}')"):
        [(tokens, documents, mean_loss)] = _query(f"SELECT count(*), count(DISTINCT document_id), avg(loss) FROM {source}")
        assert (tokens, documents) == (summary["n_tokens"], 2)  # the empty document has no rows
        assert mean_loss == pytest.approx(summary["mean_loss"], rel=1e-6)
        texts = _query(f"SELECT string_agg(coalesce(token_text, ''), '' ORDER BY position) FROM {source} "
                       "GROUP BY document_id ORDER BY document_id")
        assert [t for (t,) in texts] == TEXTS[:2]
        rows = _query(f"SELECT position, char_start, char_end, coalesce(token_text, ''), p, loss, focal_weight, focal_loss, "
                      f"top2_id, top2_logprob FROM {source} ORDER BY document_id, position")
        second = rows[3:5]
        assert [(r[0], r[1], r[2], r[3]) for r in second] == [(0, 0, 1, "🎭"), (1, 0, 1, "")]
        position, _, _, _, p, loss, weight, focal_loss, top2_id, top2_logprob = rows[0]
        assert (p, loss, weight) == pytest.approx((0.5, math.log(2), 0.25), rel=1e-6)
        assert focal_loss == pytest.approx(0.25 * math.log(2), rel=1e-6)
        assert (top2_id, top2_logprob) == (1, pytest.approx(math.log(0.5) - 1, rel=1e-6))
        assert rows[2][6] == 0.0  # p = 1: focal weight (1 − p)^γ is exactly 0

    table = pq.read_table(tmp_path / "run.parquet")
    types = {field.name: str(field.type) for field in table.schema}
    assert (types["document_id"], types["position"], types["token_text"], types["loss"], types["top1_id"]) == (
        "int64", "int32", "string", "float", "int32")
    assert table.schema.metadata[b"focalscope.gamma"] == b"2.0"


# What this test checks does not depend on the database (the export's queries run on both above).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_export_errors_and_the_cli(api, sessions, cli, tmp_path, settings, monkeypatch):
    run_id = _scored_run(sessions)
    monkeypatch.setenv("FOCALSCOPE_AUTO_MIGRATE", "false")  # the tables come from create_all
    assert "not found" in error_of(api.get(f"{API}/runs/999/export"), 404, "not_found")
    error_of(api.get(f"{API}/runs/{run_id}/export", params={"format": "xlsx"}), 422, "invalid_input")
    error_of(api.get(f"{API}/runs/{run_id}/export", params={"gamma": -1}), 422, "invalid_input")
    url = ["--database-url", settings.db_url]
    out = cli(*url, "export", str(run_id), "--format", "parquet", "--gamma", "0", "--out", str(tmp_path / "x.parquet"))
    assert out.stdout.strip() == f"run {run_id}: 6 tokens of 3 documents -> {tmp_path / 'x.parquet'}"
    assert _query(f"SELECT sum(focal_weight), sum(focal_loss) = sum(loss) FROM '{tmp_path / 'x.parquet'}'") == [(6.0, True)]
    assert "run 999 not found" in cli(*url, "export", "999", "--out", str(tmp_path / "y.csv"), expect=2).stderr
    missing = tmp_path / "no-such-dir" / "z.csv"
    assert "cannot write" in cli(*url, "export", str(run_id), "--format", "csv", "--out", str(missing), expect=2).stderr


def test_token_texts_are_built_without_a_loop_exactly_as_the_token_view_shows_them():
    """export.token_text_array against scores.token_texts (the per-token loop the API uses) on random
    spans over text with 2-, 3- and 4-byte characters: repeated spans (a split 🎭), gaps, overlaps,
    spans past the end."""
    text = "Café — naïve 🎭 fin. x\U0001F600y"
    generator = np.random.default_rng(0)
    for _ in range(500):
        n = generator.integers(0, 12)
        starts = np.sort(generator.integers(0, len(text) + 1, n)).astype(np.int32)
        ends = np.minimum(starts + generator.integers(0, 4, n), len(text) + 2).astype(np.int32)
        assert export.token_text_array(text, starts, ends).to_pylist() == scores.token_texts(text, starts, ends)

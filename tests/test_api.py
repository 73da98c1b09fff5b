"""REST API: every route's success and error paths, on SQLite and PostgreSQL. Errors are JSON
{"error": {"code", "message", "detail"}} with a 4xx status — never a 500, never a traceback."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import numpy as np
import pytest

from app.api.deps import valid_experiment, valid_series
from app.models import Experiment, ModelSeries
from app.services import corpora, jobs, queue
from app.services.errors import NotFound
from tests.support.api import API, error_of, upload
from tests.support.scored_runs import seed_run
from workers.loop import Worker

# The largest id a row can have (PostgreSQL's 32-bit integer).
LARGEST_ID = 2**31 - 1


def test_corpus_upload_list_and_read(client):
    response = upload(client)
    assert response.status_code == 201
    corpus = response.json()
    assert corpus["n_documents"] == 3 and corpus["name"] == "scenes"
    listed = client.get(f"{API}/corpora").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == corpus["id"]
    assert client.get(f"{API}/corpora/{corpus['id']}").json()["n_chars"] == corpus["n_chars"]
    documents = client.get(f"{API}/corpora/{corpus['id']}/documents", params={"limit": 2}).json()
    assert documents["total"] == 3 and len(documents["items"]) == 2
    assert [d["title"] for d in documents["items"]] == ["witches", "I.1"]
    third = client.get(f"{API}/corpora/{corpus['id']}/documents", params={"offset": 2}).json()["items"][0]
    document = client.get(f"{API}/documents/{third['id']}").json()
    assert document["text"] == "<b>bold</b> é" and document["source"] == "more.jsonl:3"


@pytest.mark.parametrize("filename,content,fragment", [
    ("empty.txt", b"", "empty"),
    ("blank.txt", b"   \n\n", "empty"),
    ("latin1.txt", "café".encode("latin-1"), "not valid UTF-8"),
    ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
    ("bad.jsonl", b'{"text": "ok"}\n{not json}\n', "line 2: not valid JSON"),
    ("wrong.jsonl", b'{"body": "no text field"}\n', 'string "text" field'),
    ("blank.jsonl", b"\n\n  \n", "empty"),
])
def test_bad_corpus_files_are_422(client, filename, content, fragment):
    response = upload(client, files=[("files", (filename, content, "application/octet-stream"))])
    assert fragment in error_of(response, 422, "invalid_input")
    assert client.get(f"{API}/corpora").json()["total"] == 0


def test_corpus_request_errors(client, settings):
    assert "name" in error_of(client.post(f"{API}/corpora", files=[("files", ("a.txt", b"x", "text/plain"))]), 422, "invalid_input")
    assert "files" in error_of(client.post(f"{API}/corpora", data={"name": "x"}), 422, "invalid_input")
    assert upload(client).status_code == 201
    assert "exists already" in error_of(upload(client), 409, "conflict")
    settings.max_upload_mb = 0.001
    big = [("files", ("big.txt", b"a" * 5000, "text/plain"))]
    assert "limit" in error_of(upload(client, name="big", files=big), 413, "too_large")
    assert "not found" in error_of(client.get(f"{API}/corpora/999"), 404, "not_found")
    error_of(client.get(f"{API}/corpora/999/documents"), 404, "not_found")
    error_of(client.get(f"{API}/documents/999"), 404, "not_found")
    error_of(client.get(f"{API}/corpora", params={"limit": 100000}), 422, "invalid_input")


def test_checkpoint_registration(client, model_root, tmp_path):
    body = {"path": str(model_root / "tiny"), "series": "tiny", "step": 10}
    first = client.post(f"{API}/checkpoints", json=body)
    assert first.status_code == 201
    checkpoint = first.json()
    assert (checkpoint["format"], checkpoint["architecture"], checkpoint["series_name"]) == ("safetensors", "llama", "tiny")
    assert len(checkpoint["weights_sha256"]) == 64
    again = client.post(f"{API}/checkpoints", json=body)
    assert again.status_code == 200 and again.json()["id"] == checkpoint["id"]
    assert client.get(f"{API}/checkpoints/{checkpoint['id']}").json()["step"] == 10
    assert client.get(f"{API}/checkpoints").json()["total"] == 1
    series = client.get(f"{API}/series").json()["items"]
    assert series[0]["name"] == "tiny" and series[0]["n_checkpoints"] == 1

    # Different weights at a step that is taken.
    other = shutil.copytree(model_root / "tiny", model_root / "other")
    (other / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    assert "different checkpoint" in error_of(client.post(f"{API}/checkpoints", json={**body, "path": str(other)}), 409, "conflict")


def test_checkpoint_errors(client, model_root, tmp_path):
    outside = shutil.copytree(model_root / "tiny", tmp_path / "elsewhere")
    assert "outside the server's model roots" in error_of(client.post(f"{API}/checkpoints", json={"path": str(outside)}), 403, "forbidden")
    assert "no such file" in error_of(client.post(f"{API}/checkpoints", json={"path": str(model_root / "nope")}), 422, "invalid_input")
    pickled = model_root / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    (pickled / "config.json").write_text("{}")
    assert "pickle" in error_of(client.post(f"{API}/checkpoints", json={"path": str(pickled)}), 422, "invalid_input")
    fake = model_root / "fake.gguf"
    fake.write_bytes(b"NOPE" + b"\0" * 64)
    assert "not a GGUF file" in error_of(client.post(f"{API}/checkpoints", json={"path": str(fake)}), 422, "invalid_input")
    truncated = model_root / "truncated.gguf"
    truncated.write_bytes(b"GGUF\x03\x00")
    assert "unreadable GGUF" in error_of(client.post(f"{API}/checkpoints", json={"path": str(truncated)}), 422, "invalid_input")
    no_tokenizer = shutil.copytree(model_root / "tiny", model_root / "no-tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    assert "no tokenizer" in error_of(client.post(f"{API}/checkpoints", json={"path": str(no_tokenizer)}), 422, "invalid_input")
    error_of(client.post(f"{API}/checkpoints", json={"path": str(model_root / "tiny"), "step": -1}), 422, "invalid_input")
    error_of(client.get(f"{API}/checkpoints/999"), 404, "not_found")


def test_run_lifecycle_and_tokens(client, settings, model_root):
    corpus = upload(client).json()
    checkpoint = client.post(f"{API}/checkpoints", json={"path": str(model_root / "tiny")}).json()
    body = {"checkpoint_id": checkpoint["id"], "corpus_id": corpus["id"], "options": {"max_length": 32, "top_k": 5}}
    created = client.post(f"{API}/runs", json=body)
    assert created.status_code == 201
    run = created.json()
    assert run["progress"]["status"] == "queued" and run["progress"]["documents_total"] == 3
    assert run["options"] == {"window": "rolling", "max_length": 32, "stride": None, "top_k": 5, "dtype": "float32"}
    again = client.post(f"{API}/runs", json=body)
    assert again.status_code == 200 and again.json()["id"] == run["id"]

    documents = client.get(f"{API}/runs/{run['id']}/documents").json()["items"]
    assert [d["scored"] for d in documents] == [False] * 3
    first = documents[0]["document_id"]
    assert "not been scored" in error_of(client.get(f"{API}/runs/{run['id']}/documents/{first}/tokens"), 404, "not_found")
    assert "no summary yet" in error_of(client.get(f"{API}/runs/{run['id']}/summary"), 404, "not_found")

    Worker(settings, device="cpu").run_forever(exit_when_idle=True)

    done = client.get(f"{API}/runs/{run['id']}").json()
    assert done["progress"]["status"] == "done" and done["summary"]["n_tokens"] == done["progress"]["tokens_done"]
    assert client.get(f"{API}/runs/{run['id']}/summary").json()["mean_loss"] == done["summary"]["mean_loss"]
    listed = client.get(f"{API}/runs", params={"corpus_id": corpus["id"]}).json()
    assert listed["total"] == 1 and listed["items"][0]["progress"]["status"] == "done"
    assert client.get(f"{API}/runs", params={"corpus_id": 999}).json()["total"] == 0

    tokens = client.get(f"{API}/runs/{run['id']}/documents/{first}/tokens", params={"gamma": 2}).json()
    n = tokens["n_tokens"]
    assert n > 5 and all(len(tokens[f]) == n for f in ("text", "logprob", "loss", "p", "focal_weight", "rank", "top_ids"))
    assert "".join(tokens["text"]) == "When shall we three meet again?\nIn thunder, lightning, or in rain?"
    logprob = np.array(tokens["logprob"])
    np.testing.assert_allclose(tokens["loss"], -logprob, rtol=1e-6)
    np.testing.assert_allclose(tokens["focal_weight"], (-np.expm1(logprob)) ** 2, rtol=1e-6)
    np.testing.assert_allclose(tokens["focal_loss"], (-np.expm1(logprob)) ** 2 * -logprob, rtol=1e-6)
    assert all(len(row) == 5 for row in tokens["top_ids"]) and all(len(row) == 5 for row in tokens["top_text"])
    assert any(text for row in tokens["top_text"] for text in row)
    gamma0 = client.get(f"{API}/runs/{run['id']}/documents/{first}/tokens", params={"gamma": 0}).json()
    assert gamma0["focal_weight"] == [1.0] * n
    error_of(client.get(f"{API}/runs/{run['id']}/documents/{first}/tokens", params={"gamma": -1}), 422, "invalid_input")
    error_of(client.get(f"{API}/runs/{run['id']}/documents/999999/tokens"), 404, "not_found")

    jobs = client.get(f"{API}/jobs", params={"run_id": run["id"]}).json()
    assert {j["kind"] for j in jobs["items"]} == {"score", "summarize"} and all(j["status"] == "done" for j in jobs["items"])
    assert client.get(f"{API}/jobs/{jobs['items'][0]['id']}").json()["status"] == "done"
    assert client.get(f"{API}/jobs", params={"status": "failed"}).json()["total"] == 0
    error_of(client.get(f"{API}/jobs/999"), 404, "not_found")


def test_run_errors_cancel_and_retry(client, model_root):
    corpus = upload(client).json()
    checkpoint = client.post(f"{API}/checkpoints", json={"path": str(model_root / "tiny")}).json()
    ids = {"checkpoint_id": checkpoint["id"], "corpus_id": corpus["id"]}
    error_of(client.post(f"{API}/runs", json={**ids, "checkpoint_id": 999}), 404, "not_found")
    error_of(client.post(f"{API}/runs", json={**ids, "corpus_id": 999}), 404, "not_found")
    for options in ({"window": "sliding"}, {"stride": 4}, {"window": "strided", "max_length": 8, "stride": 8},
                    {"top_k": 0}, {"max_length": 1}, {"dtype": "int8"}, {"unknown": 1}):
        error_of(client.post(f"{API}/runs", json={**ids, "options": options}), 422, "invalid_input")
    run = client.post(f"{API}/runs", json=ids).json()
    cancelled = client.post(f"{API}/runs/{run['id']}/cancel").json()
    assert cancelled["progress"]["status"] == "cancelled"
    retried = client.post(f"{API}/runs/{run['id']}/retry").json()
    assert retried["progress"]["status"] == "queued"
    error_of(client.get(f"{API}/runs/999"), 404, "not_found")
    error_of(client.post(f"{API}/runs/999/cancel"), 404, "not_found")
    error_of(client.get(f"{API}/runs/0"), 422, "invalid_input")
    error_of(client.post(f"{API}/runs", content=b"{not json", headers={"content-type": "application/json"}), 422, "invalid_input")


def test_health_unknown_routes_and_openapi(client):
    health = client.get(f"{API}/health").json()
    assert health["status"] == "ok" and health["queued_jobs"] == 0 and health["queue_stalled"] is False
    # The limits the dashboard's upload forms show and check before sending.
    assert (health["max_upload_mb"], health["max_checkpoint_upload_mb"]) == (64.0, 4096.0)
    error_of(client.get(f"{API}/nope"), 404, "not_found")
    error_of(client.delete(f"{API}/corpora"), 405, "method_not_allowed")
    spec = client.get(f"{API}/openapi.json").json()
    assert "/api/v1/runs/{run_id}/documents/{document_id}/tokens" in spec["paths"]
    assert client.get("/docs").status_code == 200
    json.dumps(spec)


def test_run_list_carries_headline_numbers_and_utc_timestamps(client, settings, model_root):
    corpus = upload(client).json()
    checkpoint = client.post(f"{API}/checkpoints", json={"path": str(model_root / "tiny")}).json()
    run = client.post(f"{API}/runs", json={"checkpoint_id": checkpoint["id"], "corpus_id": corpus["id"]}).json()
    assert run["headline"] is None and run["created_at"].endswith("Z")
    Worker(settings, device="cpu").run_forever(exit_when_idle=True)
    listed = client.get(f"{API}/runs").json()["items"][0]
    full = client.get(f"{API}/runs/{run['id']}").json()
    assert listed["summary"] is None and listed["headline"]["mean_loss"] == full["summary"]["mean_loss"]
    assert listed["headline"]["n_tokens"] == full["summary"]["n_tokens"] > 0


def test_vocabulary_lists_the_fixed_names_in_order(api):
    assert api.get(f"{API}/vocabulary").json() == {
        "job_statuses": ["queued", "running", "done", "failed", "cancelled"],
        "live_statuses": ["queued", "running"],
        "terminal_statuses": ["done", "failed", "cancelled"],
        "job_kinds": ["score", "summarize", "train"],
        "window_policies": ["rolling", "strided"],
        "dtypes": ["float32", "bfloat16", "float16"],
        "tokenizers": ["bpe", "smollm2"],
        "checkpoint_formats": ["safetensors", "gguf"],
        "checkpoint_file_suffixes": [".safetensors", ".json", ".txt", ".model", ".jinja", ".gguf"],
        "token_fields": ["token_id", "char_start", "char_end", "logprob", "entropy", "rank", "top_ids",
                         "top_logprobs", "sum_p2", "context_len"],
    }
    spec = api.get(f"{API}/openapi.json").json()
    schema = spec["paths"]["/api/v1/vocabulary"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Vocabulary"}
    assert spec["components"]["schemas"]["RunOptions"]["properties"]["dtype"]["enum"] == ["float32", "bfloat16", "float16"]


def test_series_and_experiment_dependencies(sessions):
    with sessions() as session:
        series = ModelSeries(name="s")
        corpus = corpora.create_corpus(session=session, name="c", documents=[corpora.DocumentIn(text="x", source="x")])
        experiment = Experiment(name="e", train_corpus_id=corpus.id)
        session.add_all([series, experiment])
        session.flush()
        assert valid_series(session, series.id) is series
        assert valid_experiment(session, experiment.id) is experiment
        with pytest.raises(NotFound, match=f"^series {series.id + 1} not found$"):
            valid_series(session, series.id + 1)
        with pytest.raises(NotFound, match=f"^experiment {LARGEST_ID} not found$"):
            valid_experiment(session, LARGEST_ID)


def test_job_filters(api, sessions):
    run_id, _ = seed_run(sessions, 2, set())
    with sessions() as session:
        shards = [queue.enqueue(session=session, kind="score", run_id=run_id, payload={}) for _ in range(3)]
        queue.enqueue(session=session, kind="summarize", run_id=run_id, payload={})
        queue.enqueue(session=session, kind="train", payload={})
        shards[0].status = "failed"
        session.commit()
        shard_ids = [job.id for job in shards]

    def ids(**params):
        page = api.get(f"{API}/jobs", params=params).json()
        return page["total"], [job["id"] for job in page["items"]]

    assert ids()[0] == 5 and ids()[1] == sorted(ids()[1], reverse=True)
    assert ids(status="failed") == (1, [shard_ids[0]])
    assert ids(kind="score", status="queued") == (2, shard_ids[:0:-1])
    assert ids(run_id=run_id)[0] == 4 and ids(kind="train")[0] == 1 and ids(run_id=run_id, kind="train")[0] == 0
    assert ids(kind="score", limit=1) == (3, [shard_ids[2]])
    error_of(api.get(f"{API}/jobs", params={"status": "stuck"}), 422, "invalid_input")
    error_of(api.get(f"{API}/jobs", params={"kind": "bake"}), 422, "invalid_input")
    assert api.get(f"{API}/jobs/{shard_ids[0]}").json()["status"] == "failed"


def test_queue_health_counts_busy_workers_and_sees_a_stalled_queue(api, sessions, engine):
    with sessions() as session:
        waiting = queue.enqueue(session=session, kind="score", payload={})
        session.commit()
        created = waiting.created_at
        health = jobs.queue_health(session=session, now=created + timedelta(seconds=29))
        assert (health.busy_workers, health.queued_jobs, health.queue_stalled) == (0, 1, False)
        assert jobs.queue_health(session=session, now=created + timedelta(seconds=31)).queue_stalled is True
        for worker in ("w1", "w1", "w2"):
            running = queue.enqueue(session=session, kind="score", payload={})
            running.status, running.worker, running.lease_expires_at = "running", worker, created + timedelta(seconds=60)
        session.commit()
        busy = jobs.queue_health(session=session, now=created + timedelta(seconds=31))
        assert (busy.busy_workers, busy.queued_jobs, busy.queue_stalled) == (2, 1, False)
        expired = jobs.queue_health(session=session, now=created + timedelta(seconds=61))
        assert (expired.busy_workers, expired.queue_stalled) == (0, True)
    health = api.get(f"{API}/health").json()
    assert health["queued_jobs"] == 1 and health["database"] == engine.dialect.name

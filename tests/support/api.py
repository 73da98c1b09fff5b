"""The REST API from a test: the prefix, a client on an empty database, and the error-shape check."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

API = "/api/v1"


@pytest.fixture
def api(settings, engine) -> Iterator[TestClient]:
    """A client on an empty database, for tests that make their rows through the services or the API."""
    with TestClient(create_app(settings, serve_ui=False)) as client:
        yield client


@pytest.fixture
def model_root(tmp_path, tiny_llama_dir):
    """A model root (FOCALSCOPE_MODEL_ROOTS) holding the tiny Llama as models/tiny."""
    root = tmp_path / "models"
    shutil.copytree(tiny_llama_dir, root / "tiny")
    return root


@pytest.fixture
def client(settings, engine, model_root):
    """A client on an empty database whose server may register checkpoints under `model_root`."""
    settings.model_roots = [model_root]
    with TestClient(create_app(settings, serve_ui=False)) as client:
        yield client


def own_settings(data_dir: Path, database_url: str | None = None, **fields) -> Settings:
    """Settings for a test that cannot take the `settings` fixture (module-scoped, or refused before
    any database access); keep what that fixture sets for every app in step with it."""
    return Settings(_env_file=None, data_dir=data_dir, database_url=database_url,
                    **{"allowed_hosts": ["testserver"], **fields})


def error_of(response, status: int, code: str) -> str:
    """The error message of a JSON error response, after checking its status, code and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    return body["error"]["message"]


def upload(client, name="scenes", files=None):
    """Upload a corpus of three documents (a .txt and a two-line .jsonl with markup and unicode)."""
    files = files or [
        ("files", ("witches.txt", "When shall we three meet again?\nIn thunder, lightning, or in rain?".encode(), "text/plain")),
        ("files", ("more.jsonl", b'{"text": "Fair is foul, and foul is fair.", "title": "I.1"}\n\n{"text": "<b>bold</b> \xc3\xa9"}\n', "application/jsonl")),
    ]
    return client.post(f"{API}/corpora", data={"name": name}, files=files)

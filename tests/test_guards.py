"""Browser defences in every mode (here: open on loopback, the default): cross-site writes refused with
nothing written, uploads included; a Host allowlist against DNS rebinding; CORS off unless origins are
configured; security headers on every response; /docs from installed files."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.guards import same_origin, split_host
from app.core.config import Settings
from app.db.base import Base
from app.db.engine import make_engine
from app.main import create_app
from app.models.checkpoint import Checkpoint
from app.models.corpus import Corpus, Document
from tests.support.api import API, error_of

# Exactly what a browser sends with a form posted from a page on another site.
CROSS_SITE = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
SAME_ORIGIN = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
CORPUS_FORM = {"data": {"name": "forged"}, "files": [("files", ("a.txt", b"Fair is foul.", "text/plain"))]}


@pytest.fixture(scope="module")
def make_client(tmp_path_factory):
    """Clients on one SQLite database with every table, each with its own settings: the checks below
    are about headers, not dialects (the one that writes runs on both databases)."""
    root = tmp_path_factory.mktemp("guards")
    url = f"sqlite:///{root / 'db.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()

    def client(**values) -> TestClient:
        values.setdefault("allowed_hosts", ["testserver"])
        settings = Settings(_env_file=None, data_dir=root, database_url=url, **values)
        return TestClient(create_app(settings))

    return client


def files_under(directory) -> list:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def test_cross_site_forms_are_refused_with_nothing_written(api, sessions, settings):
    before = files_under(settings.data_dir)
    refused = [
        api.post(f"{API}/corpora", headers=CROSS_SITE, **CORPUS_FORM),
        api.post(f"{API}/checkpoints/upload", headers=CROSS_SITE, data={"series": "forged"},
                 files={"file": ("model.gguf", b"GGUF" + b"\0" * 64, "application/octet-stream")}),
        api.post(f"{API}/runs/1/cancel", headers=CROSS_SITE),
        api.post(f"{API}/corpora", headers={"Sec-Fetch-Site": "same-site"}, **CORPUS_FORM),
        api.post(f"{API}/corpora", headers={"Origin": "http://evil.example"}, **CORPUS_FORM),
        api.post(f"{API}/corpora", headers={"Origin": "null"}, **CORPUS_FORM),
        api.post(f"{API}/corpora", headers={"Origin": "http://testserver:8001"}, **CORPUS_FORM),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert "may not change anything" in error_of(refused[0], 403, "cross_site")
    with sessions() as session:
        counts = [session.scalar(select(func.count()).select_from(t)) for t in (Corpus, Document, Checkpoint)]
    assert counts == [0, 0, 0]
    assert files_under(settings.data_dir) == before

    # The dashboard's own requests (same origin) and clients without browser headers still write.
    assert api.post(f"{API}/corpora", headers=SAME_ORIGIN, **CORPUS_FORM).status_code == 201
    assert api.post(f"{API}/corpora", data={"name": "curl"}, files=CORPUS_FORM["files"]).status_code == 201
    # Reads from another site change nothing, and without CORS their answers stay unreadable to it.
    read = api.get(f"{API}/corpora", headers=CROSS_SITE)
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_configured_origins_get_cors_and_may_write(make_client):
    with make_client(allowed_origins=["https://notebook.lab.example"]) as client:
        origin = {"Origin": "https://notebook.lab.example", "Sec-Fetch-Site": "cross-site"}
        preflight = client.options(f"{API}/corpora", headers={
            **origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
        assert preflight.headers["access-control-allow-origin"] == "https://notebook.lab.example"
        assert client.post(f"{API}/corpora", headers=origin, **CORPUS_FORM).status_code == 201
        assert client.post(f"{API}/corpora", headers=CROSS_SITE, **CORPUS_FORM).status_code == 403


HOSTS = {"testserver": 200, "127.0.0.1:8000": 200, "localhost": 200, "[::1]:8000": 200, "LOCALHOST.": 200,
         "evil.example": 421, "127.0.0.1.evil.example:8000": 421, "": 400}


def test_host_allowlist(make_client):
    with make_client() as client:
        responses = {host: client.get(f"{API}/vocabulary", headers={"Host": host}) for host in HOSTS}
    assert {host: r.status_code for host, r in responses.items()} == HOSTS
    assert error_of(responses["evil.example"], 421, "bad_host").startswith("this server does not answer")
    assert responses["evil.example"].headers["x-frame-options"] == "DENY"  # refusals carry the headers too


def test_bound_and_configured_hosts(make_client):
    # Bound to an interface: that address and the configured names (served open here, the Host is the point).
    with make_client(host="10.1.2.3", allowed_hosts=["gpu-box.lab"], insecure_open=True) as client:
        codes = [client.get(f"{API}/vocabulary", headers={"Host": h}).status_code
                 for h in ("10.1.2.3:8000", "gpu-box.lab", "GPU-box.lab:80", "testserver", "other.lab")]
    assert codes == [200, 200, 200, 421, 421]
    with make_client(allowed_hosts=["*"]) as client:
        assert client.get(f"{API}/vocabulary", headers={"Host": "anything.example"}).status_code == 200


def test_security_headers_and_offline_docs(make_client):
    with make_client() as client:
        responses = {path: client.get(path) for path in ("/", "/docs", f"{API}/vocabulary", "/static/js/app.js")}
        for path, response in responses.items():
            assert response.status_code == 200, path
            csp = response.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "default-src 'self'" in csp, path
            # Plotly's injected styles by hash: the empty one it fills through the CSSOM, and MapLibre's.
            assert re.search(r"style-src 'self' 'sha256-47DEQpj8HBSa\+/TImW\+5JCeuQeRkm5NMpJWZG3hSuFU=' 'sha256-", csp)
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
        docs = responses["/docs"].text
        assert re.findall(r"(?:src|href)=\"(https?:[^\"]*)\"", docs) == []  # nothing from a CDN
        assert "<script>" not in docs and "<script src=\"/docs/swagger_init.js\"" in docs
        bundle = client.get("/docs/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
        assert client.get("/docs/swagger-ui.css").headers["content-type"].startswith("text/css")
        assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


def test_host_and_origin_parsing():
    assert split_host("Example.ORG.:8000") == ("example.org", 8000)
    assert split_host("[::1]:8000") == ("::1", 8000)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("localhost") == ("localhost", None)
    assert split_host("::1") == ("::1", None)
    assert same_origin("http://localhost:8000", "localhost:8000")
    assert same_origin("https://lab.example", "lab.example")  # behind a TLS proxy
    assert same_origin("http://lab.example", "lab.example:80")
    assert not same_origin("http://lab.example", "lab.example:8000")
    assert not same_origin("http://lab.example.evil", "lab.example")
    assert not same_origin("null", "lab.example")
    assert not same_origin("file://", "lab.example")

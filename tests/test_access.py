"""API tokens and the access policy: the token service on both databases, the CLI, the refusal to
serve an unprotected non-loopback address, every route's declared scope, the scope matrix (every route
× no token, read, write, admin, revoked) under the "token required" policy, public reads, open
loopback mode, and server paths shown to admins only."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api import API_PREFIX
from app.api.access import ROUTE_SCOPES
from app.core.config import Settings
from app.main import create_app
from app.models.access import ApiToken
from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.job import Job
from app.schemas.common import without_server_paths
from app.services import tokens
from app.services.errors import Conflict, InvalidInput, NotFound
from focalscope.serve import unprotected_refusal

CALLERS = ("none", "read", "write", "admin", "revoked")
RANK = {"read": 0, "write": 1, "admin": 2}


def api_routes(app) -> list[tuple[str, str]]:
    """(method, path within the API prefix) of every API route, whether FastAPI keeps included routers
    as such (their routes carry their own paths) or copies their routes with the prefix."""
    found = []

    def walk(routes, prefix):
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute):
                path = (prefix + route.path) if prefix else route.path
                if path.startswith(API_PREFIX):
                    found.extend((method, path.removeprefix(API_PREFIX)) for method in route.methods)

    walk(app.routes, "")
    return sorted(found)


def test_token_service(sessions):
    with sessions() as session:
        made = tokens.create_token(session=session, name="alice", scope="write")
        session.commit()
        secret = made.secret
        assert re.fullmatch(r"fs_[A-Za-z0-9_-]{43}", secret)
        stored = session.scalars(select(ApiToken)).one()
        # Only the hash and the prefix are kept: the secret is in no column.
        assert secret not in repr([getattr(stored, c.key) for c in ApiToken.__table__.columns])
        assert (stored.prefix, stored.secret_sha256) == (secret[:10], tokens.secret_hash(secret))
        assert tokens.verify_token(session=session, secret=secret).name == "alice"
        assert tokens.verify_token(session=session, secret=secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
        assert tokens.verify_token(session=session, secret="Bearer " + secret) is None
        with pytest.raises(Conflict):
            tokens.create_token(session=session, name="alice", scope="read")
        with pytest.raises(InvalidInput):
            tokens.create_token(session=session, name="bob", scope="root")
        with pytest.raises(InvalidInput):
            tokens.create_token(session=session, name="42", scope="read")
        assert not tokens.has_admin_token(session=session)
        admin = tokens.create_token(session=session, name="root", scope="admin")
        assert tokens.has_admin_token(session=session)
        tokens.revoke_token(session=session, ref=str(admin.token.id))
        tokens.revoke_token(session=session, ref="alice")
        session.commit()
        assert not tokens.has_admin_token(session=session)
        assert tokens.verify_token(session=session, secret=secret) is None
        assert [t.revoked_at is not None for t in tokens.list_tokens(session=session)] == [True, True]
        with pytest.raises(NotFound):
            tokens.revoke_token(session=session, ref="nobody")


def test_token_commands_and_the_refusal_to_serve_unprotected(cli):
    created = cli("token", "create", "--scope", "write", "--name", "ci")
    secret = created.stdout.strip()
    assert secret.startswith("fs_") and "shown only now" in created.stderr
    listed = cli("token", "list").stdout
    assert "ci" in listed and "write" in listed and secret[:10] in listed and secret not in listed
    assert "is revoked" in cli("token", "revoke", "ci").stdout
    assert re.search(r"ci\s+write\s+\S+\s+\S+ \S+\s+\d{4}-", cli("token", "list").stdout)
    assert "already" in cli("token", "create", "--name", "ci", expect=2).stderr
    assert "no token" in cli("token", "revoke", "99", expect=2).stderr

    refused = cli("serve", "--host", "0.0.0.0", "--port", "1", "--workers", "0", expect=2).stderr
    assert "no admin token exists" in refused and "--insecure-open" in refused


def test_policy_settings(tmp_path):
    def settings(**values) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path, **values)

    assert [settings(host=h).loopback_bound for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2")] == [True] * 4
    assert [settings(host=h).loopback_bound for h in ("0.0.0.0", "::", "10.0.0.5", "gpu-box")] == [False] * 4
    assert settings().open_access and not settings(require_token=True).open_access
    assert not settings(host="0.0.0.0").open_access and settings(host="0.0.0.0", insecure_open=True).open_access

    wide = settings(host="0.0.0.0", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    from app.db.migrate import upgrade
    upgrade(wide.db_url)
    assert "no admin token exists" in unprotected_refusal(wide)
    assert unprotected_refusal(settings(host="0.0.0.0", insecure_open=True)) is None
    assert unprotected_refusal(settings()) is None
    from app.db.engine import make_engine, make_sessionmaker
    engine = make_engine(wide.db_url)
    with make_sessionmaker(engine)() as session:
        tokens.create_token(session=session, name="root", scope="admin")
        session.commit()
    engine.dispose()
    assert unprotected_refusal(wide) is None


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """One app that requires tokens (loopback with --require-token), on SQLite, with a token per scope
    and a revoked one; the matrix is about the policy, not the database."""
    from app.db.migrate import upgrade

    root = tmp_path_factory.mktemp("access")
    settings = Settings(_env_file=None, data_dir=root, database_url=f"sqlite:///{root / 'db.sqlite'}",
                        require_token=True, allowed_hosts=["testserver"], model_roots=[root / "models"])
    upgrade(settings.db_url)
    app = create_app(settings, serve_ui=False)
    secrets = {}
    with app.state.sessions() as session:
        for scope in ("read", "write", "admin"):
            secrets[scope] = tokens.create_token(session=session, name=scope, scope=scope).secret
        secrets["revoked"] = tokens.create_token(session=session, name="gone", scope="admin").secret
        tokens.revoke_token(session=session, ref="gone")
        series = ModelSeries(name="s")
        session.add(series)
        session.flush()
        session.add(Checkpoint(series_id=series.id, step=1, format="gguf", path="/srv/models/secret-run.gguf",
                               weights_sha256="0" * 64, tokenizer_fingerprint="f", architecture="llama", meta={}))
        session.add(Job(kind="score", status="failed", payload={},
                        error="cannot load checkpoint /srv/models/secret-run/step-100: no weights for lm_head"))
        session.commit()
    with TestClient(app) as client:
        yield app, client, secrets


def test_every_api_route_declares_its_scope(guarded):
    app = guarded[0]
    routes = api_routes(app)
    assert len(routes) >= 40
    undeclared = [route for route in routes if route not in ROUTE_SCOPES]
    assert undeclared == [], f"declare these routes' scopes in app/api/access.py ROUTE_SCOPES: {undeclared}"
    assert sorted(ROUTE_SCOPES) == routes, "ROUTE_SCOPES names routes that do not exist"


def expected_status(needed: str, caller: str) -> str:
    if caller in ("none", "revoked"):
        return "401"
    return "403" if RANK[caller] < RANK[needed] else "passes"


def test_scope_matrix(guarded):
    app, client, secrets = guarded
    outcomes, wanted = {}, {}
    for method, path in api_routes(app):
        url = API_PREFIX + re.sub(r"\{[a-z_]+(:path)?\}", "1", path)
        needed = ROUTE_SCOPES[(method, path)]
        for caller in CALLERS:
            headers = {} if caller == "none" else {"Authorization": f"Bearer {secrets[caller]}"}
            response = client.request(method, url, headers=headers)
            got = str(response.status_code) if response.status_code in (401, 403) else "passes"
            if got != "passes":
                assert response.json()["error"]["code"] in ("unauthorized", "forbidden")
            outcomes[(method, path, caller)] = got
            wanted[(method, path, caller)] = expected_status(needed, caller)
    assert outcomes == wanted
    assert client.get(f"{API_PREFIX}/runs").headers["www-authenticate"] == "Bearer"


def test_an_anonymous_upload_is_refused_before_its_body_is_read(guarded):
    _, client, _ = guarded
    read = []

    def body():
        read.append("a chunk")
        yield b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n'

    response = client.post(f"{API_PREFIX}/corpora", content=body(),
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert (response.status_code, response.headers["www-authenticate"], read) == (401, "Bearer", [])


def test_public_read_and_open_mode(guarded):
    app, _, _ = guarded
    public = create_app(app.state.settings.model_copy(update={"public_read": True}), serve_ui=False)
    with TestClient(public) as client:
        assert client.get(f"{API_PREFIX}/corpora").status_code == 200
        assert client.post(f"{API_PREFIX}/runs", json={}).status_code == 401
        assert client.get(f"{API_PREFIX}/corpora", headers={"Authorization": "Bearer fs_wrong"}).status_code == 401
    opened = create_app(app.state.settings.model_copy(update={"require_token": False}), serve_ui=False)
    with TestClient(opened) as client:
        assert client.get(f"{API_PREFIX}/corpora").status_code == 200
        assert client.post(f"{API_PREFIX}/runs", json={}).status_code == 422  # validated, not refused
        # Open on loopback: the single local user is the admin and sees server paths.
        assert client.get(f"{API_PREFIX}/checkpoints").json()["items"][0]["path"] == "/srv/models/secret-run.gguf"


def test_server_paths_only_for_admins(guarded):
    _, client, secrets = guarded
    paths = {}
    for caller in ("read", "write", "admin"):
        headers = {"Authorization": f"Bearer {secrets[caller]}"}
        listed = client.get(f"{API_PREFIX}/checkpoints", headers=headers).json()["items"]
        one = client.get(f"{API_PREFIX}/checkpoints/{listed[0]['id']}", headers=headers).json()
        paths[caller] = (listed[0]["path"], one["path"])
    assert paths == {"read": (None, None), "write": (None, None),
                     "admin": ("/srv/models/secret-run.gguf", "/srv/models/secret-run.gguf")}
    # Workers' errors name paths; the API cuts each to its last part, for every caller.
    job = client.get(f"{API_PREFIX}/jobs", headers={"Authorization": f"Bearer {secrets['admin']}"}).json()["items"][0]
    assert job["error"] == "cannot load checkpoint step-100: no weights for lm_head"


def test_paths_in_error_text_are_cut_to_their_last_part():
    texts = {
        "GGUF file /tmp/a/b.gguf is gone": "GGUF file b.gguf is gone",
        "/data/models/x/: gone": "x: gone",
        "No such file: '/srv/m/config.json'": "No such file: 'config.json'",
        "12 tokens/s, 1/2 done, see http://host/a/b": "12 tokens/s, 1/2 done, see http://host/a/b",
    }
    assert [without_server_paths(text) for text in texts] == list(texts.values())


def test_a_checkpoints_bytes_need_a_write_token(guarded):
    app, client, secrets = guarded
    files = f"{API_PREFIX}/checkpoints/1/files"
    answers = {caller: (client.get(files, headers={"Authorization": f"Bearer {secrets[caller]}"}),
                        client.get(f"{files}/secret-run.gguf", headers={"Authorization": f"Bearer {secrets[caller]}"}))
               for caller in ("read", "write")}
    # The manifest is a read; its files are the model itself: a read token is refused them.
    assert [r.status_code for r in answers["read"]] == [409, 403]
    assert [r.status_code for r in answers["write"]] == [409, 409]  # allowed; the files are not on this server
    assert "/srv/models" not in answers["write"][0].text  # the refusal does not show the server path
    public = create_app(app.state.settings.model_copy(update={"public_read": True}), serve_ui=False)
    with TestClient(public) as anonymous:
        assert [anonymous.get(files).status_code, anonymous.get(f"{files}/secret-run.gguf").status_code] == [409, 401]

"""Schemathesis against the OpenAPI document: every operation, a few generated requests each, on a
seeded SQLite database (a corpus, a two-checkpoint series scored by the worker), so that requests
reach the services and not only 404s. Checks: no 5xx, every status documented, every body matching
its documented schema (errors included: app/api/openapi.py). Bounded: a fixed number of examples,
derandomized, no shrinking, so that it costs the same every run."""

from __future__ import annotations

import re
import shutil

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from app.db import migrate
from app.main import create_app
from tests.support.api import API, own_settings, upload
from workers.loop import Worker

# Generated requests per operation, besides the seeded ids: 42 operations x 5 take ~10 s here.
EXAMPLES = 5


@pytest.fixture(scope="module")
def seeded_app(tmp_path_factory, tiny_llama_dir):
    root = tmp_path_factory.mktemp("fuzz")
    settings = own_settings(root / "data", f"sqlite:///{root / 'fuzz.db'}", model_roots=[root / "models"],
                            max_upload_mb=1, max_checkpoint_upload_mb=1)
    migrate.upgrade(settings.db_url)  # at the Alembic head, as a served database is: /readyz answers 200
    for step in (1, 2):
        shutil.copytree(tiny_llama_dir, root / "models" / "run" / f"checkpoint-{step}")
    app = create_app(settings, serve_ui=False)
    with TestClient(app) as client:
        corpus = upload(client).json()
        series = client.post(f"{API}/series/register", json={"path": str(root / "models" / "run")}).json()
        scoring = client.post(f"{API}/series/{series['series_id']}/corpora/{corpus['id']}/score",
                              json={"options": {"max_length": 16}})
        assert scoring.status_code == 201, scoring.text
        Worker(settings, device="cpu").run_forever(exit_when_idle=True)
        assert [run["progress"]["status"] for run in client.get(f"{API}/runs").json()["items"]] == ["done", "done"]
    return app


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def test_every_operation_answers_as_documented(seeded_app):
    """Per operation: the seeded ids (1) once, then EXAMPLES generated requests with valid and with
    invalid parameters and bodies. Failures are gathered so that one run names every offender."""
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", seeded_app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

        @given(case=strategy)
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                             phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(checks=CHECKS)

        try:
            seeded = {name: 0 if name == "position" else 1 for name in re.findall(r"{(\w+)}", operation.path)}
            operation.Case(path_parameters=seeded).call_and_validate(checks=CHECKS)
            check()
        except Exception as failure:  # noqa: BLE001  (schemathesis' failures are assorted exception types)
            failures.append(f"{operation.label}: {failure}")
    assert operations >= 40
    assert not failures, "\n\n".join(failures)


def test_every_integer_a_request_carries_is_bounded(offline_app):
    """Every integer in a path, query or body has a maximum within 64 bits: past it, the database
    overflowed (a 500). The generated requests above seldom try huge numbers; this reads the schema."""
    document = offline_app.openapi()
    components = document["components"]["schemas"]
    unbounded = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            inputs = [(p["name"], p["schema"]) for p in operation.get("parameters", [])]
            inputs += [("body", media["schema"]) for media in operation.get("requestBody", {}).get("content", {}).values()]
            for name, schema in inputs:
                unbounded += [f"{method.upper()} {path} {name}{where}"
                              for where, node in integers(schema, components, "")
                              if not node.get("maximum", 2**64) <= 2**63]  # FastAPI writes 2**63 - 1 as a float
    assert unbounded == []


def integers(schema: dict, components: dict, where: str, seen: frozenset = frozenset()):
    """(location, schema) of every integer in a JSON schema, references followed."""
    if ref := schema.get("$ref"):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            yield from integers(components[name], components, where, seen | {name})
        return
    if schema.get("type") == "integer":
        yield where, schema
    for key in ("anyOf", "allOf", "oneOf"):
        for alternative in schema.get(key, []):
            yield from integers(alternative, components, where, seen)
    for name, inner in schema.get("properties", {}).items():
        yield from integers(inner, components, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        yield from integers(schema["items"], components, f"{where}[]", seen)


@pytest.fixture
def offline_app(tmp_path):
    return create_app(own_settings(tmp_path / "data"), serve_ui=False)

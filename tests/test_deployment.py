"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the compose file parses,
the database has a healthcheck, the migration runs (and succeeds) before the API and the workers
start, all of them use the same DATABASE_URL, and the image installs focalscope the way the README
says, from every file a wheel is built from."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.support.packaging import WHEEL_SOURCES

REPO = Path(__file__).resolve().parents[1]
APP_SERVICES = ("migrate", "api", "worker")


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _database_service(services: dict) -> str:
    return next(name for name, service in services.items() if str(service.get("image", "")).startswith("postgres"))


def test_the_database_has_a_healthcheck_that_asks_postgres():
    services = _compose()["services"]
    check = services[_database_service(services)]["healthcheck"]
    assert "pg_isready" in " ".join(check["test"])
    assert check["retries"] >= 1


def test_the_migration_runs_before_the_api_and_the_workers():
    services = _compose()["services"]
    database = _database_service(services)
    assert services["migrate"]["command"] == ["focalscope", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {database: {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        # The services that start after the migration do not migrate again (replicas would race).
        assert services[name]["environment"]["FOCALSCOPE_AUTO_MIGRATE"] == "false"


def test_the_api_is_healthy_when_it_is_ready():
    check = " ".join(_compose()["services"]["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in check


def test_every_service_uses_the_same_database_url_on_the_database_service():
    services = _compose()["services"]
    database = services[_database_service(services)]["environment"]
    urls = {services[name]["environment"]["DATABASE_URL"] for name in APP_SERVICES}
    assert len(urls) == 1
    url = urls.pop()
    expected = (f"postgresql+psycopg://{database['POSTGRES_USER']}:{database['POSTGRES_PASSWORD']}"
                f"@{_database_service(services)}:5432/{database['POSTGRES_DB']}")
    assert url == expected


def test_the_image_installs_the_project_the_way_the_readme_says():
    dockerfile = (REPO / "Dockerfile").read_text()
    readme = (REPO / "README.md").read_text()
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    torch_step = next(i for i, line in enumerate(runs) if '"torch>=2.4"' in line)
    install_step = next(i for i, line in enumerate(runs) if re.search(r"\bpip install \.(\s|$)", line))
    assert torch_step < install_step  # torch first, from the index that matches the hardware
    assert 'pip install "torch>=2.4" --index-url' in readme
    assert re.search(r"^pip install \.(\s|$)", readme, re.MULTILINE)
    copied = {part.rstrip("/").removeprefix("./") for line in dockerfile.splitlines() if line.startswith("COPY ")
              for part in line.split()[1:-1]}
    assert set(WHEEL_SOURCES) <= copied
    # The installed wheel finds its own migrations and dashboard: no path into the source tree.
    assert "FOCALSCOPE_FRONTEND_DIR" not in dockerfile


def test_the_database_password_comes_from_the_environment_with_no_default():
    """No fixed secret in the repository: compose refuses to start (`${VAR:?message}`) until
    POSTGRES_PASSWORD is set, and the URL the services use carries the same variable."""
    services = _compose()["services"]
    password = services[_database_service(services)]["environment"]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", password)
    assert all(password in services[name]["environment"]["DATABASE_URL"] for name in APP_SERVICES)

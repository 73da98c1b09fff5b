"""The API side never imports torch or transformers: it must start in a second on a machine
without a GPU stack, and a request must never trigger a model load."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[1] / "app"
FORBIDDEN = {"torch", "transformers", "workers", "accelerate", "tokenizers", "safetensors"}

PROBE = """
import sys
from fastapi.testclient import TestClient
from app.core.config import Settings
from app.db.base import Base
from app.main import create_app
import app.models
settings = Settings(_env_file=None, data_dir=sys.argv[1], allowed_hosts=["testserver"])
api = create_app(settings)
Base.metadata.create_all(api.state.engine)
with TestClient(api) as client:
    for path in ("/api/v1/health", "/api/v1/runs", "/api/v1/corpora", "/api/v1/jobs", "/"):
        assert client.get(path).status_code == 200, path
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(",".join(loaded))
"""


def test_no_module_under_app_imports_the_model_stack():
    offenders = []
    for path in APP_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(APP_DIR.parent)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_serving_requests_loads_no_model_stack(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN), str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=APP_DIR.parent,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""

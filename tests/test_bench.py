"""The benchmarks run where they matter — a GPU session is short and a bench bug wastes it — so
every bench module must import, and the whole GPU session script must run end to end in its
CPU smoke mode (tiny models, same code paths, results in a temporary folder)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHES = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", BENCHES)
def test_bench_module_imports(name):
    importlib.import_module(f"bench.{name}")


@pytest.mark.slow
def test_gpu_session_script_runs_in_smoke_mode(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "BENCH_SMOKE": "1", "OUT": str(out), "PYTHON": sys.executable}
    done = subprocess.run(["bash", "bench/gpu_all.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "== exit 0" in (out / "gpu_check.log").read_text()
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {line["bench"] for line in lines} >= {"score_gpu", "train"}
    summary = json.loads((out / "gpu_summary.json").read_text())
    assert not summary["errors"], summary["errors"]
    exactness = [check for check in summary["checks"] if check.get("check", "").startswith("fp32 scorer")]
    assert len(exactness) == 1 and all(check["pass"] for check in exactness), summary["checks"]  # one architecture
    profiles = sorted(p.name for p in out.glob("profile-*.txt"))
    assert any(name.startswith("profile-score-") for name in profiles), profiles
    assert any(name.startswith("profile-train-") for name in profiles), profiles

"""The benchmarks run where they matter — a GPU session is short and a bench bug wastes it — so
every bench module must import, the GPU session script must call its benches as it should, and those
must run end to end in their CPU smoke mode (tiny models, same code paths, results in a temporary folder)."""

from __future__ import annotations

import importlib
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHES = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", BENCHES)
def test_bench_module_imports(name):
    importlib.import_module(f"bench.{name}")


FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for the interpreter: records how the scripts call it, runs nothing.
echo "$*" >> "$CALLS"
case "$*" in *bench.score_gpu*) echo '{"errors": []}' > "$BENCH_SUMMARY";; esac
"""


def test_gpu_session_script_calls_the_benches(tmp_path):
    """The shell scripts' plumbing, with a stand-in interpreter: both benches called with the smoke
    arguments and the output paths (what they then do runs in-process below)."""
    fake, calls, out = tmp_path / "python", tmp_path / "calls.txt", tmp_path / "out"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {**os.environ, "BENCH_SMOKE": "1", "OUT": str(out), "PYTHON": str(fake), "CALLS": str(calls)}
    done = subprocess.run(["bash", "bench/gpu_all.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    called = calls.read_text().splitlines()
    assert [line.split()[1] for line in called if line.startswith("-m ")] == ["bench.score_gpu", "bench.train"]
    train = next(line for line in called if "bench.train" in line)
    assert "--device cpu --preset tiny" in train and f"--json {out}/train_gpu.json --profile {out}" in train
    assert "== exit 0" in (out / "gpu_check.log").read_text() and "== done" in done.stdout


@pytest.mark.slow
# The import test above imported these modules; run as __main__ they get fresh globals all the same
# (their settings are read from the environment when they run), which runpy warns about.
@pytest.mark.filterwarnings("ignore:'bench\\.(score_gpu|train)' found in sys.modules:RuntimeWarning")
def test_gpu_session_benches_run_in_smoke_mode(tmp_path, monkeypatch):
    """What gpu_all.sh runs, in its CPU smoke mode (tiny models, same code paths), in this process:
    three interpreters importing torch cost more than the benches themselves."""
    out = tmp_path / "out"
    out.mkdir()
    for name, value in {"BENCH_SMOKE": "1", "BENCH_RESULTS": str(out / "results.jsonl"), "BENCH_PROFILE_DIR": str(out),
                        "BENCH_SUMMARY": str(out / "gpu_summary.json"), "BENCH_BUDGET_S": "240"}.items():
        monkeypatch.setenv(name, value)
    runpy.run_module("bench.score_gpu", run_name="__main__")
    monkeypatch.setattr(sys, "argv", ["bench.train", *SMOKE_TRAIN_ARGS, "--json", str(out / "train_gpu.json"),
                                      "--profile", str(out)])
    runpy.run_module("bench.train", run_name="__main__")
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {line["bench"] for line in lines} >= {"score_gpu", "train"}
    summary = json.loads((out / "gpu_summary.json").read_text())
    assert not summary["errors"], summary["errors"]
    exactness = [check for check in summary["checks"] if check.get("check", "").startswith("fp32 scorer")]
    assert len(exactness) == 1 and all(check["pass"] for check in exactness), summary["checks"]  # one architecture
    profiles = sorted(p.name for p in out.glob("profile-*.txt"))
    assert any(name.startswith("profile-score-") for name in profiles), profiles
    assert any(name.startswith("profile-train-") for name in profiles), profiles


def smoke_train_args() -> list[str]:
    """gpu_all.sh's smoke arguments for bench.train, read from the script itself."""
    script = (ROOT / "bench" / "gpu_all.sh").read_text()
    return script.split("train_args=(", 1)[1].split(")", 1)[0].split()


SMOKE_TRAIN_ARGS = smoke_train_args()

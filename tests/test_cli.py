"""The `focalscope` command line: each command's success path and its clear failures (a message on
stderr and a non-zero exit, never a traceback)."""

from __future__ import annotations

import socket

import pytest

from focalscope.cli import build_parser


def test_score_a_corpus_end_to_end(cli_process, cli, tmp_path, tiny_llama_dir):
    # Through the installed entry point: add a corpus, and score in that process.
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("When shall we three meet again?\nIn thunder, lightning, or in rain?")
    (texts / "b.jsonl").write_text('{"text": "Fair is foul."}\n{"text": "And foul is fair."}\n')
    added = cli_process("corpus", "add", str(texts), "--name", "witches")
    assert "corpus 1 'witches': 3 documents" in added.stdout
    # The other commands on the same data directory run in this process (no start-up per command),
    # but the scoring one, which starts the worker.
    assert "registered checkpoint 1: tiny@0 (safetensors, llama)" in cli("model", "add", str(tiny_llama_dir), "--series", "tiny").stdout
    assert "already registered" in cli("model", "add", str(tiny_llama_dir), "--series", "tiny").stdout
    scored = cli_process("score", "--model", "tiny", "--corpus", "witches", "--max-length", "16", "--here", "--device", "cpu")
    assert "run 1 enqueued" in scored.stdout and "done" in scored.stderr
    runs = cli("runs").stdout
    assert "tiny@0" in runs and "done" in runs and "3/3" in runs
    jobs = cli("jobs").stdout
    assert "summarize" in jobs and "score" in jobs and "failed" not in jobs
    done = cli("jobs", "--status", "done", "--limit", "1").stdout.splitlines()
    assert len(done) == 3 and "summarize" in done[2] and "done" in done[2]
    assert "summarize" not in cli("jobs", "--status", "queued").stdout
    assert "witches" in cli("corpus", "list").stdout
    assert str(tiny_llama_dir) in cli("model", "list").stdout
    assert "run 1 exists" in cli("score", "--model", "tiny@0", "--corpus", "1", "--max-length", "16").stdout


def test_clear_errors(cli, tmp_path, tiny_llama_dir):
    assert "no such file" in cli("corpus", "add", str(tmp_path / "missing.txt"), expect=2).stderr
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    assert "not valid UTF-8" in cli("corpus", "add", str(tmp_path / "latin1.txt"), expect=2).stderr
    (tmp_path / "empty.txt").write_text("")
    assert "empty" in cli("corpus", "add", str(tmp_path / "empty.txt"), expect=2).stderr
    (tmp_path / "empty-dir").mkdir()
    assert "no .txt or .jsonl" in cli("corpus", "add", str(tmp_path / "empty-dir"), expect=2).stderr
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    assert "pickle" in cli("model", "add", str(pickled), expect=2).stderr
    (tmp_path / "ok.txt").write_text("hello")
    cli("corpus", "add", str(tmp_path / "ok.txt"))
    cli("model", "add", str(tiny_llama_dir))
    assert "no checkpoint 'nope'" in cli("score", "--model", "nope", "--corpus", "ok", expect=2).stderr
    assert "no corpus 'nope'" in cli("score", "--model", "1", "--corpus", "nope", expect=2).stderr
    assert "stride" in cli("score", "--model", "1", "--corpus", "ok", "--window", "strided", "--max-length", "8",
                           "--stride", "8", expect=2).stderr
    assert "invalid choice" in cli("score", "--model", "1", "--corpus", "ok", "--window", "bogus", expect=2).stderr
    assert "invalid choice" in cli("score", "--model", "1", "--corpus", "ok", "--dtype", "int8", expect=2).stderr
    assert "invalid choice" in cli("jobs", "--status", "stuck", expect=2).stderr


def test_training_commands_enqueue_and_refuse_bad_options(cli, tmp_path):
    (tmp_path / "play.txt").write_text("When shall we three meet again? In thunder, lightning, or in rain?")
    cli("corpus", "add", str(tmp_path / "play.txt"), "--name", "play")
    # The request model's own messages, as the API gives them.
    assert "error: steps: Input should be greater than or equal to 1" in cli(
        "train", "--corpus", "play", "--series", "s", "--steps", "0", expect=2).stderr
    assert "error: loss: loss 'focal:-1': γ (gamma) must be ≥ 0" in cli(
        "train", "--corpus", "play", "--series", "s", "--loss", "focal:-1", expect=2).stderr
    assert "no corpus 'nope'" in cli("train", "--corpus", "nope", "--series", "s", expect=2).stderr
    assert "invalid choice: 'huge'" in cli("train", "--corpus", "play", "--series", "s", "--preset", "huge",
                                           expect=2).stderr
    assert "training job 1 enqueued: series 's', loss focal:2, tiny, 4 steps" in cli(
        "train", "--corpus", "play", "--series", "s", "--loss", "Focal:2", "--steps", "4", "--save-every", "2").stdout
    assert "experiment 'cmp': 2 training jobs (ce, poly1:1)" in cli(
        "experiment", "--corpus", "1", "--eval-corpus", "play", "--losses", "ce,poly1:1", "--name", "cmp",
        "--steps", "4", "--save-every", "2").stdout
    listed = cli("experiments").stdout
    assert "cmp" in listed and "ce, poly1:1" in listed


def test_serve_refuses_a_busy_port(cli_process):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert "already in use" in cli_process("serve", "--port", str(port), "--workers", "0", expect=1).stderr


def test_help_from_the_installed_entry_point(cli_process):
    assert "usage: focalscope" in cli_process("--help").stdout


# Every subcommand's help, in this process: the same parser as the entry point, without paying
# a Python start-up per command.
@pytest.mark.parametrize("command", [["serve"], ["demo"], ["worker"], ["corpus", "add"], ["model", "add"],
                                     ["score"], ["runs"], ["jobs"], ["db", "upgrade"], ["train"], ["experiment"],
                                     ["experiments"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--help"])
    assert exited.value.code == 0
    assert f"usage: focalscope {' '.join(command)}" in capsys.readouterr().out


def test_db_commands(cli):
    assert "database at revision" in cli("db", "upgrade").stdout
    assert "current: " in cli("db", "current").stdout

"""Register a folder of checkpoints as one series, each checkpoint at its training step.

A training run's output folder holds one subfolder per saved checkpoint. A subfolder (or a `.gguf`
file) is a checkpoint when its name carries a step, case-insensitively, with `-`, `_` or nothing
between the prefix and the number:

    checkpoint-N  (Hugging Face Trainer)   step-N / step_N / stepN   global_stepN (DeepSpeed)
    iter-N / iter_N / iter_000N (Megatron) iteration-N               ckpt-N

or when it holds a `trainer_state.json`. Its step is that file's `global_step` where present (the
Trainer's own count; a renamed folder keeps it), else the number in the name. A folder that holds a
checkpoint's own files (weights or config.json) and no checkpoint subfolders is one checkpoint; next
to checkpoint subfolders, such files (a Trainer's final model) are not registered.

Every checkpoint goes through `checkpoints.register_checkpoint`, which keeps the safety checks
(safetensors or GGUF only, no pickles, no custom code). Entries that are not checkpoints, or that it
refuses, are reported as skipped with the reason; only a folder where nothing registers is an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from app.models.checkpoint import Checkpoint, ModelSeries
from app.services import checkpoint_files
from app.services.checkpoint_files import PICKLE_SUFFIXES, CheckpointFiles
from app.services.checkpoints import check_under_roots, ensure_series, register_checkpoint
from app.services.errors import DomainError, InvalidInput
from app.training_specs import MAX_CHECKPOINTS

STEP_NAME = re.compile(r"^(?:checkpoint|global_step|step|iteration|iter|ckpt)[-_]?(\d+)$", re.IGNORECASE)
TRAINER_STATE = "trainer_state.json"
# A folder with more entries than this is not one training run's output (a mistyped path such as
# the home directory): refuse it before reading thousands of entries.
MAX_FOLDER_ENTRIES = 2 * MAX_CHECKPOINTS
NAMES_HINT = "checkpoint-N, step-N, global_stepN, iter-N ..."


@dataclass
class FolderRegistration:
    series: ModelSeries
    registered: list[Checkpoint] = field(default_factory=list)
    existing: list[Checkpoint] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    path: Path
    step: int | None
    tokens_seen: int | None


def register_path(
    *, session: Session, path: Path, series: str | None = None, step: int | None = None,
    tokens_seen: int | None = None, roots: list[Path] | None = None,
) -> FolderRegistration:
    """Register a checkpoint, or every checkpoint in a training output folder, into `series`
    (default: the folder's or file's name). `step` and `tokens_seen` override what is read from a
    single checkpoint; with a folder of checkpoints they are an error. With `roots`, every checkpoint
    must resolve under one of them (a symlink out of the roots is skipped)."""
    path = path.expanduser()
    if roots is not None:
        # The folder's entries are checked one by one as they register (a link out is skipped).
        check_under_roots(path, roots, entries=False)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or directory")
    candidates, skipped = scan(path)
    if not candidates and not looks_like_checkpoint(path):
        raise InvalidInput(f"no checkpoints in {path}: expected checkpoint folders ({NAMES_HINT}) or a checkpoint's "
                           f"own files", detail={"skipped": [{"path": str(p), "reason": r} for p, r in skipped]})
    if not candidates:
        single = read_candidate(path)
        candidates = [Candidate(path, step if step is not None else single.step or 0,
                                tokens_seen if tokens_seen is not None else single.tokens_seen)]
        # One checkpoint: its refusal is the answer, as it always was.
        files = _inspect(candidates[0], roots)
        result = FolderRegistration(ensure_series(session=session, name=series or path.resolve().stem))
        _register(session, result, candidates[0], files)
        return result
    if step is not None or tokens_seen is not None:
        raise InvalidInput(f"{path} holds {len(candidates)} checkpoints, each with its own step: a step or a "
                           f"token count applies to one checkpoint; give its folder instead")
    inspected = []
    for candidate in candidates:  # every file read and hashed before the first statement (see _inspect)
        try:
            inspected.append((candidate, _inspect(candidate, roots)))
        except DomainError as refused:
            skipped.append((candidate.path, refused.message))
    result = FolderRegistration(ensure_series(session=session, name=series or path.resolve().name), skipped=skipped)
    for candidate, files in inspected:
        try:
            _register(session, result, candidate, files)
        except DomainError as refused:
            result.skipped.append((candidate.path, refused.message))
    result.skipped.sort()
    if not result.registered and not result.existing:
        reasons = "; ".join(f"{p.name}: {reason}" for p, reason in result.skipped[:5])
        raise InvalidInput(f"no checkpoint of {path} could be registered ({reasons})",
                           detail={"skipped": [{"path": str(p), "reason": r} for p, r in result.skipped]})
    return result


def _inspect(candidate: Candidate, roots: list[Path] | None) -> CheckpointFiles:
    """A candidate's files, checked and hashed. Done before any database statement: an API write
    takes SQLite's write lock at its first statement, and hashing gigabytes under it would make the
    workers' commits wait past their busy timeout."""
    if roots is not None:
        check_under_roots(candidate.path, roots)
    return checkpoint_files.inspect(candidate.path)


def _register(session: Session, result: FolderRegistration, candidate: Candidate, files: CheckpointFiles) -> None:
    checkpoint, created = register_checkpoint(
        session=session, path=candidate.path, series=result.series.name, step=candidate.step,
        tokens_seen=candidate.tokens_seen, files=files,
    )
    (result.registered if created else result.existing).append(checkpoint)


def scan(folder: Path) -> tuple[list[Candidate], list[tuple[Path, str]]]:
    """The checkpoints in a training output folder, ascending by step, and the entries skipped with
    why. A file, or a folder with no checkpoint entries, gives no candidates (it may be one itself)."""
    if not folder.is_dir():
        return [], []
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if len(entries) > MAX_FOLDER_ENTRIES:
        raise InvalidInput(f"{folder} holds {len(entries)} entries; a folder of checkpoints holds at most "
                           f"{MAX_FOLDER_ENTRIES} (a series has at most {MAX_CHECKPOINTS} checkpoints)")
    candidates, others = [], []
    for entry in entries:
        is_checkpoint_file = entry.is_file() and entry.suffix.lower() == ".gguf"
        if not (entry.is_dir() or is_checkpoint_file):
            continue  # the run's logs, its config, its final weights: not checkpoints of their own
        found = read_candidate(entry)
        if found.step is not None:
            candidates.append(found)
        else:
            others.append((entry, f"no step in its name ({NAMES_HINT}) and no {TRAINER_STATE}"))
    if not candidates:
        return [], others
    if len(candidates) > MAX_CHECKPOINTS:
        raise InvalidInput(f"{folder} holds {len(candidates)} checkpoints; a series has at most {MAX_CHECKPOINTS}")
    return sorted(candidates, key=lambda c: (c.step, c.path.name)), others


def read_candidate(path: Path) -> Candidate:
    """A checkpoint's step and tokens seen: from trainer_state.json where it has them, else the step
    in the name (without a `.gguf` suffix); None where neither says."""
    state = _trainer_state(path / TRAINER_STATE) if path.is_dir() else {}
    step = state.get("global_step")
    tokens = state.get("num_input_tokens_seen")
    if not _is_count(step):
        match = STEP_NAME.match(path.stem if path.suffix.lower() == ".gguf" else path.name)
        step = int(match.group(1)) if match else None
    return Candidate(path, step, tokens if _is_count(tokens) else None)


def looks_like_checkpoint(path: Path) -> bool:
    """A file, or a folder holding a checkpoint's own files (weights of any kind, or config.json)."""
    if path.is_file():
        return True
    return path.is_dir() and any(
        p.suffix.lower() in (".safetensors", ".gguf", *PICKLE_SUFFIXES) or p.name == "config.json"
        for p in path.iterdir())


def _trainer_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}  # no state, or not the Trainer's: the folder's name still says the step
    return state if isinstance(state, dict) else {}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

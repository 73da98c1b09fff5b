"""Checkpoints of a training run on disk: write atomically, find the latest complete one, restore it.

Layout, under `<data_dir>/models/train/<series>/` (app.training_specs.train_directory):

    step-000100/
        model.safetensors, config.json      save_pretrained(safe_serialization=True)
        tokenizer.json, tokenizer_config.json
        training.json                       what the run was and where it stood (the Checkpoint's meta)
        trainer_state/
            state.safetensors               AdamW moments and RNG states (tensors)
            state.json                      step, tokens seen, optimizer param groups, loss sums (scalars)

Nothing is pickled: no torch.save / torch.load anywhere. The trainer state sits in a subdirectory so
that the checkpoint's weight hash (which covers the top-level *.safetensors) is the model's alone.

A checkpoint is written into a hidden temporary directory and renamed into place when complete, so a
directory named step-NNNNNN is always whole; a job killed mid-write leaves a `.tmp-*` that the next
attempt deletes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from workers.models import causal_lm_from_dir
from workers.training.tokenizer import save_tokenizer

log = logging.getLogger("focalscope.worker")

TRAINING_JSON = "training.json"
STATE_DIR = "trainer_state"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
STEP_DIR = re.compile(r"^step-(\d{6,})$")
TMP_PREFIX = ".tmp-"
REQUIRED_FILES = ("config.json", "model.safetensors", TRAINING_JSON, f"{STATE_DIR}/{STATE_JSON}",
                  f"{STATE_DIR}/{STATE_TENSORS}")


def step_directory(series_dir: Path, step: int) -> Path:
    return series_dir / f"step-{step:06d}"


@dataclass(frozen=True)
class SavedCheckpoint:
    path: Path
    step: int
    meta: dict  # training.json


def save_checkpoint(
    *, series_dir: Path, step: int, model: PreTrainedModel, tokenizer, optimizer: torch.optim.Optimizer,
    meta: dict, state: dict,
) -> SavedCheckpoint:
    """Write model, tokenizer, training.json and trainer state for `step`; returns once it is in place."""
    series_dir.mkdir(parents=True, exist_ok=True)
    final = step_directory(series_dir, step)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{final.name}-", dir=series_dir))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        save_tokenizer(tokenizer, tmp)
        _write_json(tmp / TRAINING_JSON, meta)
        tensors, scalars = _trainer_state(optimizer, state)
        (tmp / STATE_DIR).mkdir()
        save_file(tensors, str(tmp / STATE_DIR / STATE_TENSORS))
        _write_json(tmp / STATE_DIR / STATE_JSON, scalars)
        _fsync_tree(tmp)
        if final.exists():
            # Only when another attempt wrote this very step (same run, same fingerprint): replace it.
            trash = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}old-{final.name}-", dir=series_dir))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(series_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SavedCheckpoint(path=final, step=step, meta=meta)


def clean_temporaries(series_dir: Path) -> None:
    """Remove half-written checkpoints left by a killed attempt."""
    if series_dir.is_dir():
        for child in series_dir.iterdir():
            if child.name.startswith(TMP_PREFIX):
                shutil.rmtree(child, ignore_errors=True)


def complete_checkpoints(series_dir: Path) -> list[SavedCheckpoint]:
    """Every whole checkpoint in the series directory, by step."""
    found = []
    if not series_dir.is_dir():
        return found
    for child in series_dir.iterdir():
        match = STEP_DIR.match(child.name)
        if not match or not child.is_dir():
            continue
        if not all((child / name).is_file() for name in REQUIRED_FILES):
            log.warning("%s: incomplete checkpoint directory, ignored", child)
            continue
        meta = json.loads((child / TRAINING_JSON).read_text(encoding="utf-8"))
        found.append(SavedCheckpoint(path=child, step=int(match.group(1)), meta=meta))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(series_dir: Path, fingerprint: str) -> SavedCheckpoint | None:
    """The checkpoint to resume from. Raises ValueError when the directory holds checkpoints of a
    different training configuration (a series name reused): resuming those would mix two runs."""
    found = complete_checkpoints(series_dir)
    foreign = [c for c in found if c.meta.get("fingerprint") != fingerprint]
    if foreign:
        raise ValueError(
            f"{series_dir} holds checkpoints of another training configuration (e.g. {foreign[0].path.name}); "
            "train into a new series name, or delete that directory"
        )
    return found[-1] if found else None


def adopt_checkpoint(series_dir: Path, step: int, fetched: Path) -> SavedCheckpoint:
    """Copy a checkpoint of this series fetched from another host (a cache folder, which stays as it
    is) into the series directory as step-NNNNNN, whole or not at all, and return it from there."""
    final = step_directory(series_dir, step)
    if final.resolve() != fetched.resolve():
        series_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{final.name}-", dir=series_dir))
        try:
            shutil.copytree(fetched, tmp, dirs_exist_ok=True)
            _fsync_tree(tmp)
            if final.exists():  # an incomplete directory of that step (a complete one would not be fetched)
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(series_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    adopted = next((c for c in complete_checkpoints(series_dir) if c.step == step), None)
    if adopted is None:
        raise ValueError(f"the checkpoint of step {step} fetched from {fetched} lacks the trainer state to resume from")
    return adopted


def load_model(path: Path, device: torch.device) -> PreTrainedModel:
    return causal_lm_from_dir(path, dtype=torch.float32).to(device)


def restore_trainer_state(path: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Load optimizer moments and RNG states into place; returns the scalar state (step, tokens, ...)."""
    tensors = load_file(str(path / STATE_DIR / STATE_TENSORS))
    scalars = json.loads((path / STATE_DIR / STATE_JSON).read_text(encoding="utf-8"))
    optimizer_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state.setdefault(int(index), {})[name] = value
    groups = []
    for group in scalars["optimizer_param_groups"]:
        group = dict(group)
        group["betas"] = tuple(group["betas"])
        groups.append(group)
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return scalars["trainer"]


def _trainer_state(optimizer: torch.optim.Optimizer, state: dict) -> tuple[dict, dict]:
    saved = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, entries in saved["state"].items():
        for name, value in entries.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"optimizer.{index}.{name}"] = value.detach().to("cpu").contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = cuda_state
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in saved["param_groups"]]
    return tensors, {"trainer": state, "optimizer_param_groups": groups}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

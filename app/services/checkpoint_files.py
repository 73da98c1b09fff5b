"""Inspect a checkpoint on disk without loading it: format, weight hash, tokenizer fingerprint.

Only two formats are accepted, both free of executable payloads: a directory of `*.safetensors`
with its `config.json` and tokenizer files, or a single GGUF file. Pickle-based weights (`*.bin`,
`*.pt`, `*.ckpt`) are refused, since loading them runs arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from app.services.errors import InvalidInput
from app.vocab import FORMAT_GGUF, FORMAT_SAFETENSORS

GGUF_MAGIC = b"GGUF"
HASH_CHUNK = 8 * 1024 * 1024
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Files that define a Hugging Face tokenizer; any of them changes how text becomes token ids.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model", "tokenizer_config.json",
                   "special_tokens_map.json")


@dataclass(frozen=True)
class CheckpointFiles:
    format: str
    path: Path
    weights_sha256: str
    tokenizer_fingerprint: str
    architecture: str


def inspect(path: Path) -> CheckpointFiles:
    path = path.expanduser().resolve()
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or directory")
    if path.is_dir():
        return _inspect_safetensors_dir(path)
    if path.suffix.lower() == ".gguf":
        return _inspect_gguf(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidInput(f"{path.name}: pickle-based weights are never loaded; convert them to safetensors")
    raise InvalidInput(f"{path.name}: expected a safetensors directory or a .gguf file")


def _inspect_safetensors_dir(path: Path) -> CheckpointFiles:
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f" (found {', '.join(pickles)}: pickle weights are never loaded)" if pickles else ""
        raise InvalidInput(f"{path}: no *.safetensors weights{hint}")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise InvalidInput(f"{path}: no config.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InvalidInput(f"{config_path}: expected a JSON object")
    if "auto_map" in config:
        # Custom architectures ship Python code with the weights; workers never run it, so a
        # checkpoint that needs it is refused here rather than failing every run later.
        raise InvalidInput(f"{path}: the model needs custom code (auto_map in config.json); it is never run")
    tokenizer = [path / name for name in TOKENIZER_FILES if (path / name).is_file()]
    if not any(p.name in ("tokenizer.json", "vocab.json", "tokenizer.model") for p in tokenizer):
        raise InvalidInput(f"{path}: no tokenizer files (tokenizer.json, or vocab.json + merges.txt)")
    architecture = config.get("model_type") or ",".join(config.get("architectures") or [])
    return CheckpointFiles(
        format=FORMAT_SAFETENSORS, path=path, weights_sha256=_sha256_files(weights),
        tokenizer_fingerprint=_tokenizer_fingerprint_files(tokenizer), architecture=str(architecture),
    )


def _inspect_gguf(path: Path) -> CheckpointFiles:
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise InvalidInput(f"{path.name}: not a GGUF file (bad magic bytes)")
    try:
        from gguf import GGUFReader  # numpy-only reader; imported here to keep startup light

        reader = GGUFReader(str(path))
    except Exception as exc:  # a truncated or corrupt file raises assorted errors
        raise InvalidInput(f"{path.name}: unreadable GGUF file ({exc})") from None
    digest = hashlib.sha256()
    architecture = ""
    for name in sorted(reader.fields):
        field = reader.fields[name]
        if name == "general.architecture":
            architecture = bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
        if name.startswith("tokenizer."):
            digest.update(name.encode())
            for index in field.data:
                digest.update(bytes(field.parts[index]))
    return CheckpointFiles(
        format=FORMAT_GGUF, path=path, weights_sha256=_sha256_files([path]),
        tokenizer_fingerprint=digest.hexdigest(), architecture=architecture,
    )


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _tokenizer_fingerprint_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()

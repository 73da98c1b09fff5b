"""Inspect a checkpoint on disk without loading it: format, weight hash, tokenizer fingerprint.

Only two formats are accepted, both free of executable payloads: a directory of `*.safetensors`
with its `config.json` and tokenizer files, or a single GGUF file. Pickle-based weights (`*.bin`,
`*.pt`, `*.ckpt`) are refused, since loading them runs arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from app.services.checkpoint_manifest import Manifest, hash_checkpoint
from app.services.gguf_header import UnreadableHeader, read_header
from app.services.errors import InvalidInput
from app.vocab import FORMAT_GGUF, FORMAT_SAFETENSORS

GGUF_MAGIC = b"GGUF"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
PICKLE_HINT = ("pickle-based weights are never loaded (unpickling runs arbitrary code); convert them to safetensors "
               "where you trust them: AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT, "
               "safe_serialization=True)")
CUSTOM_CODE = "the model needs custom code ({why}); it is never run"
# Keys that make transformers import code shipped with a checkpoint.
CUSTOM_CODE_KEYS = ("auto_map", "trust_remote_code")
# The safetensors format's own bound on its JSON header; a larger length is a lie or an attack.
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
# JSON files read whole to look for custom code; a checkpoint's configs are kilobytes, a
# tokenizer.json tens of megabytes at most.
MAX_JSON_BYTES = 64 * 1024 * 1024
DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
               "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1}
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
    manifest: Manifest  # every file, hashed in the same pass as the weights


def inspect(path: Path) -> CheckpointFiles:
    path = path.expanduser().resolve()
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or directory")
    if path.is_dir():
        return _inspect_safetensors_dir(path)
    if path.suffix.lower() == ".gguf":
        return _inspect_gguf(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidInput(f"{path.name}: {PICKLE_HINT}")
    raise InvalidInput(f"{path.name}: expected a safetensors directory or a .gguf file")


def _inspect_safetensors_dir(path: Path) -> CheckpointFiles:
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f" (found {', '.join(pickles)}: {PICKLE_HINT})" if pickles else ""
        raise InvalidInput(f"{path}: no *.safetensors weights{hint}")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise InvalidInput(f"{path}: no config.json")
    config = _read_json(config_path)
    if not isinstance(config, dict):
        raise InvalidInput(f"{config_path}: expected a JSON object")
    refuse_custom_code(path)
    for weights_file in weights:
        check_safetensors_header(weights_file)
    tokenizer = [path / name for name in TOKENIZER_FILES if (path / name).is_file()]
    if not any(p.name in ("tokenizer.json", "vocab.json", "tokenizer.model") for p in tokenizer):
        raise InvalidInput(f"{path}: no tokenizer files (tokenizer.json, or vocab.json + merges.txt)")
    architecture = config.get("model_type") or ",".join(config.get("architectures") or [])
    hashed = hash_checkpoint(path)
    return CheckpointFiles(
        format=FORMAT_SAFETENSORS, path=path, weights_sha256=hashed.weights_sha256,
        tokenizer_fingerprint=_tokenizer_fingerprint_files(tokenizer), architecture=str(architecture),
        manifest=hashed.manifest,
    )


def refuse_custom_code(path: Path) -> None:
    """Refuse a checkpoint that would make transformers import code shipped with it: a Python file
    anywhere in it, or `auto_map` / `trust_remote_code` in any of its JSON files (config.json,
    tokenizer_config.json, ...). Workers never run such code; refusing here says so at registration
    rather than failing every run later, with the message the worker would give."""
    if python := sorted(path.rglob("*.py")):
        raise InvalidInput(f"{path}: {CUSTOM_CODE.format(why=f'{python[0].relative_to(path)} is a Python file')}")
    for json_path in sorted(path.glob("*.json")):
        if key := _custom_code_key(_read_json(json_path)):
            raise InvalidInput(f"{path}: {CUSTOM_CODE.format(why=f'{key} in {json_path.name}')}")


def _custom_code_key(value: object) -> str | None:
    """The first custom-code key at any depth of a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in CUSTOM_CODE_KEYS and inner not in (False, None, {}, ""):
                return key
            if found := _custom_code_key(inner):
                return found
    elif isinstance(value, list):
        for inner in value:
            if found := _custom_code_key(inner):
                return found
    return None


def _read_json(path: Path) -> object:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise InvalidInput(f"{path}: {path.stat().st_size} bytes; a checkpoint's JSON files are under "
                           f"{MAX_JSON_BYTES // 1024 // 1024} MB")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"{path}: not valid JSON ({exc})") from None


def check_safetensors_header(path: Path) -> None:
    """Refuse a safetensors file whose header lies, reading only the header: a length past the file
    or beyond the format's bound, tensors whose byte ranges fall outside the data, overlap, or do not
    match their dtype and shape. The loader would otherwise fail late, or map memory it should not."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < length <= min(MAX_SAFETENSORS_HEADER, size - 8):
            raise InvalidInput(f"{path.name}: not a safetensors file (its header length {length} does not fit "
                               f"the file's {size} bytes)")
        try:
            header = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidInput(f"{path.name}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise InvalidInput(f"{path.name}: not a safetensors file (its header is not a JSON object)")
    ranges = sorted(_tensor_range(path.name, name, entry) for name, entry in header.items() if name != "__metadata__")
    end_of_data = size - 8 - length
    previous_end = 0
    for begin, end, name in ranges:
        if begin < previous_end or end > end_of_data:
            raise InvalidInput(f"{path.name}: tensor {name!r} claims bytes {begin}..{end} of a {end_of_data}-byte "
                               f"data section (overlapping or past the end of the file)")
        previous_end = end


def _tensor_range(filename: str, name: str, entry: object) -> tuple[int, int, str]:
    try:
        begin, end = entry["data_offsets"]
        shape, width = entry["shape"], DTYPE_BYTES[entry["dtype"]]
        valid = all(isinstance(n, int) and n >= 0 for n in (begin, end, *shape)) and begin <= end
        valid = valid and end - begin == math.prod(shape) * width
    except (TypeError, KeyError, ValueError):
        valid = False
    if not valid:
        raise InvalidInput(f"{filename}: tensor {name!r} has an invalid header entry (dtype, shape and byte range "
                           f"must agree)")
    return begin, end, name


def _inspect_gguf(path: Path) -> CheckpointFiles:
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise InvalidInput(f"{path.name}: not a GGUF file (bad magic bytes)")
    try:
        header = read_header(path)
    except (UnreadableHeader, OSError, ValueError) as exc:  # mmap refuses an empty file with a ValueError
        raise InvalidInput(f"{path.name}: unreadable GGUF file ({exc})") from None
    hashed = hash_checkpoint(path)
    return CheckpointFiles(
        format=FORMAT_GGUF, path=path, weights_sha256=hashed.weights_sha256,
        tokenizer_fingerprint=header.tokenizer_fingerprint, architecture=header.architecture,
        manifest=hashed.manifest,
    )


def _tokenizer_fingerprint_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()

"""What registration reads of a GGUF file: its architecture and its tokenizer's fingerprint, from the
key-value header, with `struct` over a memory map (tensor data is never touched).

The gguf package's GGUFReader builds a numpy view for every part of every field, SmolLM2's 98,000
vocabulary and merge strings included: 6 s of a 2-core machine for a header of a few MiB. This reads
the same header in a fraction of that, and the fingerprint is the one GGUFReader's fields gave (so
checkpoints registered before keep comparing equal): sha256 over the `tokenizer.*` keys in name
order, each key's name followed by the raw bytes of its value's data — a scalar's bytes, a string's
UTF-8 bytes without its length, an array's elements in turn.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
# GGUF value types (ggml's gguf.h): fixed-size scalars by struct format; 8 = string, 9 = array.
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9
TOKENIZER_PREFIX = "tokenizer."


class UnreadableHeader(ValueError):
    """Not a GGUF header this reader understands (a truncated file, a version or byte order it lacks)."""


@dataclass(frozen=True)
class GgufHeader:
    architecture: str
    tokenizer_fingerprint: str


class _Cursor:
    def __init__(self, data: mmap.mmap):
        self.data, self.at = data, 0

    def unpack(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.at + size > len(self.data):
            raise UnreadableHeader("the header ends early (truncated file?)")
        value = struct.unpack_from("<" + fmt, self.data, self.at)[0]
        self.at += size
        return value

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise UnreadableHeader("the header ends early (truncated file?)")
        self.at += size
        return self.data[self.at - size:self.at]  # a copy: nothing keeps the map open

    def value_bytes(self, kind: int, sink: list[bytes]) -> None:
        """Step over one value of `kind`, appending its data's raw bytes to `sink`."""
        if kind == STRING:
            sink.append(self.take(self.unpack("Q")))
        elif kind == ARRAY:
            item_kind, count = self.unpack("I"), self.unpack("Q")
            if item_kind in SCALARS:  # one slice: the elements' bytes end to end
                sink.append(self.take(count * struct.calcsize("<" + SCALARS[item_kind])))
            else:
                for _ in range(count):
                    self.value_bytes(item_kind, sink)
        elif kind in SCALARS:
            sink.append(self.take(struct.calcsize("<" + SCALARS[kind])))
        else:
            raise UnreadableHeader(f"unknown value type {kind}")


def read_header(path: Path) -> GgufHeader:
    """The architecture and tokenizer fingerprint of the GGUF file at `path`; UnreadableHeader if it
    cannot be read."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return _header(_Cursor(mapped))


def _header(cursor: _Cursor) -> GgufHeader:
    if cursor.take(4) != MAGIC:
        raise UnreadableHeader("not a GGUF file (bad magic bytes)")
    version = cursor.unpack("I")
    if version not in SUPPORTED_VERSIONS:
        raise UnreadableHeader(f"GGUF version {version} (little-endian versions {SUPPORTED_VERSIONS} are read)")
    cursor.unpack("Q")  # tensor count
    fields: dict[str, list[bytes]] = {}
    architecture = ""
    for _ in range(cursor.unpack("Q")):
        key = cursor.take(cursor.unpack("Q")).decode("utf-8", "replace")
        parts: list[bytes] = []
        cursor.value_bytes(cursor.unpack("I"), parts)
        if key == "general.architecture" and parts:
            architecture = parts[0].decode("utf-8", "replace")
        if key.startswith(TOKENIZER_PREFIX):
            fields[key] = parts
    digest = hashlib.sha256()
    for key in sorted(fields):
        digest.update(key.encode())
        for part in fields[key]:
            digest.update(part)
    return GgufHeader(architecture=architecture, tokenizer_fingerprint=digest.hexdigest())

"""SmolLM2's tokenizer rebuilt from its GGUF file's metadata in a fraction of a second.

transformers (and the `gguf` package under it) parses the file's 98,000 vocabulary and merge strings
one numpy view at a time: ~9 s on this machine. The tokenizer is a byte-level BPE (GPT-2's
pre-tokenizer, no prefix space), so a plain read of the key-value header gives the tokenizer that
transformers builds from the same file: the same ids and offsets on 20,000 characters of Macbeth
with accents and an emoji, checked when this was written. For tests that need its cuts, not its model.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

# GGUF value types (ggml's gguf.h): fixed-size scalars by struct format; 8 = string, 9 = array.
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def unpack(self, fmt: str):
        value = struct.unpack_from("<" + fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.unpack("Q")
        self.at += n
        return self.data[self.at - n:self.at].decode("utf-8", errors="replace")

    def value(self, kind: int):
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            item_kind, n = self.unpack("I"), self.unpack("Q")
            return [self.value(item_kind) for _ in range(n)]
        return self.unpack(SCALARS[kind])


def gguf_metadata(path: Path, prefix: str = "tokenizer.") -> dict:
    """The key-value header entries whose keys start with `prefix` (tensor data is never read)."""
    with open(path, "rb") as file:
        data = file.read(16 << 20)  # the header of a GGUF with a 50k vocabulary is a few MiB
    reader = _Reader(data)
    if reader.data[:4] != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file")
    reader.at = 8  # magic, version
    _tensors, n_kv = reader.unpack("Q"), reader.unpack("Q")
    found = {}
    for _ in range(n_kv):
        key = reader.string()
        value = reader.value(reader.unpack("I"))
        if key.startswith(prefix):
            found[key] = value
    return found


def smollm2_bpe(path: Path) -> Tokenizer:
    """SmolLM2's byte-level BPE from the GGUF's vocabulary and merges."""
    meta = gguf_metadata(path)
    vocab = {token: i for i, token in enumerate(meta["tokenizer.ggml.tokens"])}
    merges = [tuple(merge.split(" ", 1)) for merge in meta["tokenizer.ggml.merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer

"""Registration's GGUF header reader (app/services/gguf_header.py) against the gguf package's own
reader: the same architecture and tokenizer fingerprint on a file with every kind of tokenizer field,
and clear refusals of files it cannot read. (The real SmolLM2 file's fingerprint is pinned in
test_golden.py.)"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from gguf import GGUFReader, GGUFWriter

from app.services.gguf_header import UnreadableHeader, read_header


def reference(path) -> tuple[str, str]:
    """What registration computed with GGUFReader before this reader."""
    reader = GGUFReader(str(path))
    digest, architecture = hashlib.sha256(), ""
    for name in sorted(reader.fields):
        field = reader.fields[name]
        if name == "general.architecture":
            architecture = bytes(field.parts[field.data[0]]).decode()
        if name.startswith("tokenizer."):
            digest.update(name.encode())
            for index in field.data:
                digest.update(bytes(field.parts[index]))
    return architecture, digest.hexdigest()


def write_gguf(path, tokens: list[str]) -> None:
    writer = GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_merges(["a b", "ab c", "é ✓"])
    writer.add_token_types([1] * len(tokens))
    writer.add_token_scores([float(i) / 3 for i in range(len(tokens))])
    writer.add_bos_token_id(1)
    writer.add_add_bos_token(True)
    writer.add_context_length(64)
    writer.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_same_architecture_and_fingerprint_as_the_gguf_package(tmp_path):
    path = tmp_path / "m.gguf"
    write_gguf(path, ["<s>", "</s>", "a", "b", "ab", "é", "✓", " thunder"])
    header = read_header(path)
    assert (header.architecture, header.tokenizer_fingerprint) == reference(path)
    other = tmp_path / "other.gguf"
    write_gguf(other, ["<s>", "</s>", "a", "b", "ab", "é", "✓", " lightning"])
    assert read_header(other).tokenizer_fingerprint == reference(other)[1] != header.tokenizer_fingerprint


def test_files_it_cannot_read_are_refused_with_a_reason(tmp_path):
    path = tmp_path / "m.gguf"
    write_gguf(path, ["a", "b"])
    data = path.read_bytes()
    cases = {"cut.gguf": (data[:40], "ends early"), "magic.gguf": (b"NOPE" + data[4:], "bad magic"),
             "v1.gguf": (data[:4] + (1).to_bytes(4, "little") + data[8:], "version 1")}
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UnreadableHeader, match=reason):
            read_header(tmp_path / name)

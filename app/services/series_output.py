"""What the series statistics send out besides numbers: token texts, context snippets, compact floats.

A token's display text follows the document view's rule (scores.token_texts): its character span,
minus the characters an earlier token already shows. Here it is computed for chosen positions only,
without a Python loop over the whole document.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.corpus import Document
from app.services.series_stream import ID_CHUNK, read_scores

# Characters of document text shown on each side of a token in a context snippet.
CONTEXT_CHARS = 40
# Floats are sent with this many significant digits: a per-step array of a long document is
# ~3× smaller as JSON than at full float32 precision, and p = exp(log p) derived from a log p rounded
# so is within 0.05 % of the stored one for log p > −10 (0.5 % down to −100).
SIGNIFICANT_DIGITS = 4


def display_texts_at(text: str, char_start: np.ndarray, char_end: np.ndarray, positions: np.ndarray) -> list[str]:
    """scores.token_texts(text, char_start, char_end)[i] for each i in `positions`."""
    shown_before = np.maximum.accumulate(np.r_[0, char_end[:-1]]) if char_end.size else np.zeros(0, np.int64)
    starts = np.maximum(char_start[positions], shown_before[positions]).tolist()
    ends = char_end[positions].tolist()
    return [text[start:end] if end > start else "" for start, end in zip(starts, ends)]


@dataclass(frozen=True)
class TokenInText:
    text: str  # display text
    char_start: int
    char_end: int
    context_before: str
    context_after: str


def tokens_in_text(*, session: Session, run_id: int,
                   positions: Mapping[int, np.ndarray]) -> dict[int, list[TokenInText]]:
    """{document id: the tokens at `positions[document id]` of that document, in that order}, with
    their spans and context snippets, read from one run's spans and the documents' text."""
    spans = read_scores(session=session, run_ids=[run_id], columns=("char_start", "char_end"),
                        document_ids=positions)
    texts = document_texts(session=session, document_ids=positions)
    found = {}
    for document_id, wanted in positions.items():
        row, text = spans[document_id][run_id], texts[document_id]
        wanted = np.asarray(wanted, dtype=np.int64)
        shown = display_texts_at(text, row["char_start"], row["char_end"], wanted)
        found[document_id] = [
            TokenInText(text=token, char_start=start, char_end=end,
                        context_before=text[max(0, start - CONTEXT_CHARS):start],
                        context_after=text[end:end + CONTEXT_CHARS])
            for token, start, end in zip(shown, row["char_start"][wanted].tolist(), row["char_end"][wanted].tolist())
        ]
    return found


def document_texts(*, session: Session, document_ids) -> dict[int, str]:
    ids = sorted(set(document_ids))
    found = {}
    for i in range(0, len(ids), ID_CHUNK):
        chunk = ids[i:i + ID_CHUNK]
        found.update(session.execute(select(Document.id, Document.text).where(Document.id.in_(chunk))).all())
    return found


def round_significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """Values rounded to `digits` significant digits (whole numbers from 10^digits on), as float64
    whose shortest repr is the rounded decimal."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.floor(np.log10(np.abs(values), where=values != 0, out=np.zeros_like(values)))
    decimals = np.clip(digits - 1 - magnitude, 0, 15)
    scale = 10.0 ** decimals
    return np.round(values * scale) / scale


def texts_at(*, session: Session, run_id: int, document_id: np.ndarray, position: np.ndarray) -> list[str]:
    """The display text of each (document_id[i], position[i]) token, in that order."""
    indices: dict[int, list[int]] = defaultdict(list)
    for i, document in enumerate(np.asarray(document_id).tolist()):
        indices[document].append(i)
    position = np.asarray(position, dtype=np.int64)
    found = tokens_in_text(session=session, run_id=run_id,
                           positions={document: position[chosen] for document, chosen in indices.items()})
    texts = [""] * len(position)
    for document, chosen in indices.items():
        for i, token in zip(chosen, found[document]):
            texts[i] = token.text
    return texts

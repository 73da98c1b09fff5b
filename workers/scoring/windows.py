"""Window policies: how a document longer than the model's context is cut into model inputs.

A window is a slice of the sequence `[prefix] + tokens` (`Span`: start, length, score_from): the model
reads `sequence[start : start + length]`, and its predictions from input position `score_from` on
count. The prediction at input position p is of `sequence[start + p + 1]`, i.e. document token
`start + p`, made with p + 1 tokens of context (the document prefix token included).

- rolling (default): lm-evaluation-harness `loglikelihood_rolling` — the first window predicts the
  first max_length tokens from the prefix token; each later window predicts the next max_length
  tokens (fewer at the end) and is filled up with the tokens just before them. Same totals as lm-eval.
- strided: the Hugging Face "perplexity of fixed-length models" recipe on [prefix] + document:
  windows of max_length start every `stride` tokens; each window predicts only the tokens that the
  previous window did not, so each token is scored once, with the most context a stride allows.

Spans need only the document's length, so the scorer plans a whole pool of documents with integer
arithmetic and never copies token lists per window; `Window` (with its input ids) is the readable
form the tests compare with lm-eval.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    start: int
    length: int
    score_from: int

    @property
    def doc_offset(self) -> int:
        """Document index of the first scored token."""
        return self.start + self.score_from

    @property
    def n_scored(self) -> int:
        return self.length - self.score_from


@dataclass(frozen=True)
class Window:
    input_ids: list[int]
    score_from: int
    doc_offset: int

    @property
    def n_scored(self) -> int:
        return len(self.input_ids) - self.score_from


def rolling_spans(n_tokens: int, max_length: int) -> list[Span]:
    if n_tokens == 0:
        return []
    first = min(max_length, n_tokens)
    spans = [Span(0, first, 0)]
    predicted = first
    while predicted < n_tokens:
        n_pred = min(n_tokens - predicted, max_length)
        end = predicted + n_pred
        # Input: the max_length tokens before the last target; its last n_pred predictions count.
        spans.append(Span(end - max_length, max_length, max_length - n_pred))
        predicted = end
    return spans


def strided_spans(n_tokens: int, max_length: int, stride: int) -> list[Span]:
    if not 1 <= stride < max_length:
        raise ValueError("strided windows need 1 ≤ stride < max_length")
    sequence_length = n_tokens + 1
    spans = []
    previous_end = 1  # sequence index of the first token not yet predicted (0 is the prefix)
    for begin in range(0, sequence_length, stride):
        end = min(begin + max_length, sequence_length)
        if end > previous_end:
            # The last token of the window predicts nothing inside it, so it is left out.
            spans.append(Span(begin, end - 1 - begin, previous_end - 1 - begin))
            previous_end = end
        if end == sequence_length:
            break
    return spans


def rolling_windows(tokens: list[int], prefix_token: int, max_length: int) -> list[Window]:
    return windows_of(tokens, prefix_token, rolling_spans(len(tokens), max_length))


def strided_windows(tokens: list[int], prefix_token: int, max_length: int, stride: int) -> list[Window]:
    return windows_of(tokens, prefix_token, strided_spans(len(tokens), max_length, stride))


def windows_of(tokens: list[int], prefix_token: int, spans: list[Span]) -> list[Window]:
    """The spans of a document as model inputs."""
    sequence = [prefix_token] + list(tokens)
    return [Window(sequence[s.start : s.start + s.length], s.score_from, s.doc_offset) for s in spans]

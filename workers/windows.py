"""Window policies: how a document longer than the model's context is cut into model inputs.

A `Window` is a model input (`input_ids`) whose predictions from position `score_from` on count:
the prediction at input position i (≥ score_from) is of document token `doc_offset + i − score_from`,
made with i + 1 tokens of context (the document prefix token included).

- rolling (default): lm-evaluation-harness `loglikelihood_rolling` — the first window predicts the
  first max_length tokens from the prefix token; each later window predicts the next max_length
  tokens (fewer at the end) and is filled up with the tokens just before them. Same totals as lm-eval.
- strided: the Hugging Face "perplexity of fixed-length models" recipe on [prefix] + document:
  windows of max_length start every `stride` tokens; each window predicts only the tokens that the
  previous window did not, so each token is scored once, with the most context a stride allows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    input_ids: list[int]
    score_from: int
    doc_offset: int

    @property
    def n_scored(self) -> int:
        return len(self.input_ids) - self.score_from


def rolling_windows(tokens: list[int], prefix_token: int, max_length: int) -> list[Window]:
    if not tokens:
        return []
    first = min(max_length, len(tokens))
    windows = [Window([prefix_token] + tokens[: first - 1], 0, 0)]
    predicted = first
    while predicted < len(tokens):
        n_pred = min(len(tokens) - predicted, max_length)
        end = predicted + n_pred
        # Input: the max_length tokens before the last target; its last n_pred predictions count.
        windows.append(Window(tokens[end - max_length - 1 : end - 1], max_length - n_pred, end - n_pred))
        predicted = end
    return windows


def strided_windows(tokens: list[int], prefix_token: int, max_length: int, stride: int) -> list[Window]:
    if not 1 <= stride < max_length:
        raise ValueError("strided windows need 1 ≤ stride < max_length")
    sequence = [prefix_token] + tokens
    windows = []
    previous_end = 1  # sequence index of the first token not yet predicted (0 is the prefix)
    for begin in range(0, len(sequence), stride):
        end = min(begin + max_length, len(sequence))
        if end > previous_end:
            # The last token of the window predicts nothing inside it, so it is left out.
            input_ids = sequence[begin : end - 1]
            windows.append(Window(input_ids, previous_end - 1 - begin, previous_end - 1))
            previous_end = end
        if end == len(sequence):
            break
    return windows

"""Score documents with a causal LM: tokenize with character offsets, cut into windows, run
length-sorted batches, and gather every per-token field into per-document arrays.

Batches are padded on the right and run without an attention mask: under a causal mask a real token
never attends to the padding after it, so its prediction is exactly what it would be alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from app.schemas.run import RunOptions
from app.services.scores import DocumentScores
from app.vocab import WINDOW_ROLLING
from workers.metrics import TokenStats, stats_from_hidden
from workers.models import LoadedModel
from workers.windows import Window, rolling_windows, strided_windows


@dataclass
class TokenizedDocument:
    document_id: int
    token_ids: list[int]
    char_start: np.ndarray
    char_end: np.ndarray


@dataclass
class _DocumentBuffers:
    n: int
    top_k: int
    windows_left: int

    def __post_init__(self):
        n, k = self.n, self.top_k
        self.logprob = np.zeros(n, np.float32)
        self.entropy = np.zeros(n, np.float32)
        self.rank = np.zeros(n, np.int32)
        self.top_ids = np.zeros((n, k), np.int32)
        self.top_logprobs = np.zeros((n, k), np.float32)
        self.sum_p2 = np.zeros(n, np.float32)
        self.context_len = np.zeros(n, np.int32)


def tokenize(tokenizer, document_id: int, text: str) -> TokenizedDocument:
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False)
    offsets = np.asarray(encoding["offset_mapping"], dtype=np.int32).reshape(-1, 2)
    return TokenizedDocument(document_id, list(encoding["input_ids"]), offsets[:, 0].copy(), offsets[:, 1].copy())


class Scorer:
    def __init__(self, loaded: LoadedModel, options: RunOptions, *, max_batch_tokens: int):
        self.loaded = loaded
        self.options = options
        self.max_length = min(options.max_length, loaded.max_positions or options.max_length)
        self.max_batch_tokens = max(max_batch_tokens, self.max_length)
        model = loaded.model
        self.decoder = model.base_model
        self.lm_head = model.get_output_embeddings()
        self.logit_transform = _logit_transform(model)

    def windows(self, tokens: list[int]) -> list[Window]:
        prefix = self.loaded.prefix_token_id
        if self.options.window == WINDOW_ROLLING:
            return rolling_windows(tokens, prefix, self.max_length)
        stride = min(self.options.stride, self.max_length - 1)
        return strided_windows(tokens, prefix, self.max_length, stride)

    @torch.inference_mode()
    def score(
        self, documents: list[tuple[int, str]], *, on_progress: Callable[[int, int], None] | None = None,
        check: Callable[[], None] | None = None,
    ) -> list[DocumentScores]:
        """Score (document id, text) pairs; results in the given order. `on_progress(documents_done,
        tokens_done)` after each batch; `check()` may raise to abort between batches."""
        tokenized = [tokenize(self.loaded.tokenizer, doc_id, text) for doc_id, text in documents]
        work: list[tuple[int, Window]] = []
        buffers = []
        for index, doc in enumerate(tokenized):
            windows = self.windows(doc.token_ids)
            buffers.append(_DocumentBuffers(len(doc.token_ids), self.options.top_k, len(windows)))
            work.extend((index, w) for w in windows)
        # Longest first: similar lengths share a batch (little padding), and an out-of-memory
        # batch shows up at the start rather than after an hour.
        work.sort(key=lambda item: -len(item[1].input_ids))
        documents_done = sum(1 for b in buffers if b.windows_left == 0)
        tokens_done = 0
        for batch in self._batches(work):
            if check is not None:
                check()
            stats = self._score_batch([w for _, w in batch], tokenized, [i for i, _ in batch])
            # One device-to-host copy per field and batch, then plain numpy slicing.
            host = {name: getattr(stats, name).cpu().numpy() for name in TokenStats.__dataclass_fields__}
            offset = 0
            for index, window in batch:
                n = window.n_scored
                _scatter(buffers[index], window, host, offset)
                offset += n
                tokens_done += n
                buffers[index].windows_left -= 1
                documents_done += buffers[index].windows_left == 0
            if on_progress is not None:
                on_progress(documents_done, tokens_done)
        return [self._result(doc, buf) for doc, buf in zip(tokenized, buffers)]

    def _batches(self, work: list[tuple[int, Window]]):
        batch: list[tuple[int, Window]] = []
        for item in work:
            longest = len(batch[0][1].input_ids) if batch else len(item[1].input_ids)
            if batch and longest * (len(batch) + 1) > self.max_batch_tokens:
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def _score_batch(self, windows: list[Window], docs: list[TokenizedDocument], doc_index: list[int]) -> TokenStats:
        device = self.loaded.device
        width = max(len(w.input_ids) for w in windows)
        input_ids = torch.zeros((len(windows), width), dtype=torch.long)
        rows, cols, targets = [], [], []
        for row, (window, index) in enumerate(zip(windows, doc_index)):
            length = len(window.input_ids)
            input_ids[row, :length] = torch.tensor(window.input_ids)
            positions = range(window.score_from, length)
            rows.extend([row] * len(positions))
            cols.extend(positions)
            tokens = docs[index].token_ids
            targets.extend(tokens[window.doc_offset : window.doc_offset + window.n_scored])
        hidden = self.decoder(input_ids=input_ids.to(device), use_cache=False).last_hidden_state
        selected = hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
        return stats_from_hidden(
            selected, self.lm_head, torch.tensor(targets, device=device), self.options.top_k, self.logit_transform
        )

    def _result(self, doc: TokenizedDocument, buf: _DocumentBuffers) -> DocumentScores:
        arrays = {
            "token_id": np.asarray(doc.token_ids, np.int32), "char_start": doc.char_start, "char_end": doc.char_end,
            "logprob": buf.logprob, "entropy": buf.entropy, "rank": buf.rank, "top_ids": buf.top_ids,
            "top_logprobs": buf.top_logprobs, "sum_p2": buf.sum_p2, "context_len": buf.context_len,
        }
        return DocumentScores(document_id=doc.document_id, top_k=self.options.top_k, arrays=arrays)


def _scatter(buf: _DocumentBuffers, window: Window, host: dict[str, np.ndarray], offset: int) -> None:
    n = window.n_scored
    span = slice(window.doc_offset, window.doc_offset + n)
    rows = slice(offset, offset + n)
    for name in TokenStats.__dataclass_fields__:
        getattr(buf, name)[span] = host[name][rows]
    buf.context_len[span] = np.arange(window.score_from + 1, window.score_from + 1 + n, dtype=np.int32)


def _logit_transform(model):
    """Architectures whose LM head output is not the final logits (Gemma 2/3 soft-capping)."""
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        return lambda logits: torch.tanh(logits / cap) * cap
    return None

"""Training data: the corpus as one token stream, and the batch of every step drawn from (seed, step).

Documents are tokenized without special tokens and joined as  BOS doc₁ [EOS] BOS doc₂ [EOS] …  (see
tokenizer.separator_ids). A batch is `batch_size` windows of seq_len + 1 tokens at random offsets;
the offsets of step s depend on (seed, s) only — not on what ran before — so a job resumed at step s
sees exactly the batches an uninterrupted job would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workers.training.tokenizer import separator_ids

# Documents per tokenizer call: the fast tokenizer parallelises inside a batch; bounded so that a
# 100k-document corpus does not hold every intermediate encoding at once.
TOKENIZE_BATCH = 512


@dataclass(frozen=True)
class TokenStream:
    ids: np.ndarray  # int32 token ids
    n_documents: int

    def __len__(self) -> int:
        return int(self.ids.size)


def tokenize_corpus(tokenizer, texts: list[str]) -> TokenStream:
    first, last = separator_ids(tokenizer)
    head = np.array([first], dtype=np.int32)
    tail = np.array([] if last is None else [last], dtype=np.int32)
    pieces: list[np.ndarray] = []
    # The tokenizers backend directly: no offsets needed here, and no "longer than the model's
    # maximum length" warnings for documents that are meant to be longer than one window.
    backend = tokenizer.backend_tokenizer
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    for start in range(0, len(texts), TOKENIZE_BATCH):
        for encoding in encode(texts[start:start + TOKENIZE_BATCH], add_special_tokens=False):
            pieces.extend((head, np.asarray(encoding.ids, dtype=np.int32), tail))
    ids = np.concatenate(pieces) if pieces else np.empty(0, np.int32)
    return TokenStream(ids=ids, n_documents=len(texts))


class BatchSampler:
    """Windows of seq_len + 1 tokens; inputs are the first seq_len, targets the last seq_len."""

    def __init__(self, stream: TokenStream, *, batch_size: int, seq_len: int, seed: int):
        if len(stream) < seq_len + 1:
            raise ValueError(
                f"the training corpus has {len(stream)} tokens; a sequence of {seq_len} needs at least "
                f"{seq_len + 1}: lower seq_len or add text"
            )
        self.ids = torch.from_numpy(stream.ids.astype(np.int64))
        self.batch_size, self.seq_len, self.seed = batch_size, seq_len, seed
        self._offsets = torch.arange(seq_len + 1)

    def starts(self, step: int) -> np.ndarray:
        # SeedSequence([seed, step]) mixes both into independent, platform-stable streams.
        rng = np.random.default_rng([self.seed, step])
        return rng.integers(0, len(self.ids) - self.seq_len, size=self.batch_size)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs [B, T], targets [B, T]) for the update with 0-based index `step`."""
        windows = self.ids[torch.from_numpy(self.starts(step))[:, None] + self._offsets]
        return windows[:, :-1], windows[:, 1:]

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

"""The host side of scoring: tokenize and plan ahead of the device, gather results behind it.

A *pool* is a few shards' documents scored together: tokenized in one call, cut into windows, sorted
and batched as one (so batches are full and tight even when shards are small), then returned shard
by shard. A feeder thread builds the next pool — reading documents, tokenization, window arithmetic,
every batch's input and index arrays — while the device scores the current one; the scorer's thread
only launches work and scatters finished batches into the pool's output arrays with a handful of
numpy fancy-index assignments.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

import numpy as np

from app.services.scores import DocumentScores
from app.vocab import TOKEN_FIELDS
from workers.scoring.batching import Batch, Windows, build
from workers.scoring.windows import Span

# Pools ready ahead of the one being scored (the feeder may be building one more): enough to hide
# tokenization; more would only hold memory.
POOLS_AHEAD = 1


@dataclass
class ShardInput:
    key: object  # opaque to the scorer (the job's claim)
    documents: list[tuple[int, str]]  # (document id, text)


class Pool:
    """Tokens, windows, batches and output arrays of a few shards' documents."""

    def __init__(self, shards: list[ShardInput], encodings: list, prefix: int, spans: Callable[[int], list[Span]],
                 top_k: int, plan: Callable[[np.ndarray], list], *, pack: bool):
        self.shards, self.top_k = shards, top_k
        self.document_ids = [doc_id for shard in shards for doc_id, _ in shard.documents]
        ids, offsets = encodings
        counts = np.array([len(x) for x in ids], np.int64)
        self.counts = counts
        self.n_tokens = int(counts.sum())
        self.dest_base = np.cumsum(counts) - counts
        self.shard_docs = np.cumsum([0] + [len(s.documents) for s in shards])
        self.token_id = np.fromiter(chain.from_iterable(ids), np.int32, self.n_tokens)
        spans_flat = np.fromiter(chain.from_iterable(chain.from_iterable(offsets)), np.int32, 2 * self.n_tokens)
        self.char_start, self.char_end = spans_flat[0::2].copy(), spans_flat[1::2].copy()
        n, k = self.n_tokens, top_k
        self.logprob, self.entropy, self.sum_p2 = (np.zeros(n, np.float32) for _ in range(3))
        self.rank, self.context_len = np.zeros(n, np.int32), np.zeros(n, np.int32)
        self.top_ids, self.top_logprobs = np.zeros((n, k), np.int32), np.zeros((n, k), np.float32)
        # Per document: tokens still to score (empty documents are done from the start).
        self.left = counts.copy()
        self.windows = _windows(self.token_id, counts, self.dest_base, prefix, spans)
        self.pack = pack
        self.batches: list[Batch] = [build(self.windows, p, pack=pack) for p in plan(self.windows.length)]

    @property
    def padding(self) -> tuple[int, int]:
        """(real tokens, padded tokens) over this pool's batches."""
        return sum(b.real_tokens for b in self.batches), sum(b.padded_tokens for b in self.batches)

    def scatter(self, batch: Batch, floats: np.ndarray, ints: np.ndarray) -> None:
        """Store one finished batch: floats [N, 3 + k] = logprob, entropy, Σp², top log-probs;
        ints [N, 1 + k] = rank, top ids."""
        d = batch.dest
        self.logprob[d], self.entropy[d], self.sum_p2[d] = floats[:, 0], floats[:, 1], floats[:, 2]
        self.top_logprobs[d] = floats[:, 3:]
        self.rank[d], self.top_ids[d] = ints[:, 0], ints[:, 1:]
        self.context_len[d] = batch.context_len
        docs = np.searchsorted(self.dest_base, d, side="right") - 1
        self.left -= np.bincount(docs, minlength=len(self.left))

    def documents_done(self) -> int:
        return int((self.left == 0).sum())

    def results(self) -> Iterator[tuple[object, list[DocumentScores]]]:
        """Each shard's documents, in the order given; arrays are views into the pool's arrays."""
        assert not self.left.any(), "results asked for before every window was scored"
        for index, shard in enumerate(self.shards):
            yield shard.key, [self._document(d) for d in range(self.shard_docs[index], self.shard_docs[index + 1])]

    def _document(self, d: int) -> DocumentScores:
        start = int(self.dest_base[d])
        span = slice(start, start + int(self.counts[d]))
        arrays = {name: getattr(self, name)[span] for name in TOKEN_FIELDS}  # the pool holds one array per field
        return DocumentScores(document_id=self.document_ids[d], top_k=self.top_k, arrays=arrays)


def _windows(tokens: np.ndarray, counts: np.ndarray, dest_base: np.ndarray, prefix: int, spans) -> Windows:
    """Every document as [prefix] + tokens in one array, and all windows of all documents."""
    n_docs = len(counts)
    seq_base = np.zeros(n_docs + 1, np.int64)
    seq_base[1:] = np.cumsum(counts + 1)
    sequence = np.empty(int(seq_base[-1]), np.int64)
    sequence[seq_base[:-1]] = prefix
    body = np.ones(len(sequence), bool)
    body[seq_base[:-1]] = False
    sequence[body] = tokens
    doc, start, length, score_from = [], [], [], []
    for d, n in enumerate(counts.tolist()):
        for span in spans(n):
            doc.append(d), start.append(span.start), length.append(span.length), score_from.append(span.score_from)
    as_array = lambda values: np.asarray(values, np.int64)  # noqa: E731
    return Windows(sequence, seq_base, dest_base, as_array(doc), as_array(start), as_array(length), as_array(score_from))


class Feeder:
    """Builds pools in a background thread; iterate to get them in order. Errors in the thread
    (a tokenizer failure, a database error while reading documents) are raised in the consumer."""

    _END = object()

    def __init__(self, shards: Iterable[ShardInput], make_pool: Callable[[list[ShardInput]], Pool], pool_tokens: int):
        self._queue: queue.Queue = queue.Queue(maxsize=POOLS_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(shards, make_pool, pool_tokens), daemon=True,
                                        name="focalscope-feeder")
        self._thread.start()

    def _run(self, shards, make_pool, pool_tokens) -> None:
        try:
            pending: list[ShardInput] = []
            chars = 0
            for shard in shards:
                if self._stop.is_set():
                    return
                pending.append(shard)
                # Characters are a free proxy for tokens (≈ 4 per token in English BPE), so a pool is
                # cut before tokenizing it.
                chars += sum(len(text) for _, text in shard.documents)
                if chars >= 4 * pool_tokens:
                    self._put(make_pool(pending))
                    pending, chars = [], 0
            if pending:
                self._put(make_pool(pending))
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Pool]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

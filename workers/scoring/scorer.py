"""Score documents with a causal LM: every per-token field, in per-document arrays, in the order given.

The device side of scoring (the host side — tokenizing, windows, batch planning — is
pipeline.py and batching.py):

- the decoder runs on a batch (weights in the run's dtype: bf16/fp16 on a GPU, fp32 on a CPU);
  only the hidden states of scored positions go through the LM head, in float32, a bounded block of
  rows × vocabulary at a time (metrics.py);
- on a GPU, results come back through pinned memory with asynchronous copies while the next batch
  computes; inputs go up the same way, all of a batch's in one copy; the pinned buffers are
  allocated once and reused (staging.py);
- a batch that runs out of device memory is split in two and retried (and later pools use the
  smaller size); a single window that still does not fit retries with smaller LM-head blocks;
- `compile=True` compiles the decoder's layers (regionally) and the statistics kernel with
  torch.compile, falling back to eager on any compile error (accel.Compiled);
- on a CPU the model's linears run through oneDNN (accel.py), the statistics a cache-sized block
  of rows at a time; a half-precision CPU model attends in float32, so that memory stays
  flat over a corpus's ever-changing batch shapes.

Buckets (default) pad each batch on the right and run without an attention mask: under a causal
mask a real token never attends to the padding after it, so its prediction is exactly what it
would be alone. `pack=True` shares rows between windows instead (batching.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from app.schemas.run import RunOptions
from app.services.scores import DocumentScores
from app.vocab import DTYPE_FLOAT16, WINDOW_ROLLING
from workers.scoring.accel import Compiled, LinearRouting, plain_linears, use_f32_attention
from workers.scoring.batching import Batch, build, plan_batches, split
from workers.context import PermanentError
from workers.scoring.metrics import LOGITS_BUDGET, chunk_partials, stats_from_hidden
from workers.models import LoadedModel
from workers.scoring.pipeline import Feeder, Pool, ShardInput
from workers.scoring.staging import Slot, Staging, pack_inputs, unpack_inputs
from workers.scoring.windows import Span, Window, rolling_spans, strided_spans, windows_of

# A stream pool holds at least this many tokens (and 8 batches): enough documents for length
# sorting to leave little padding, small enough that results commit every few seconds.
MIN_POOL_TOKENS = 1 << 15
# On a GPU the LM head runs on vocabulary chunks of this many ids, ≤ GPU_LOGITS_BUDGET logits at
# once (2^28 float32 = 1 GiB, plus as much again for the exponentials): 32k–64k vocabularies in one
# chunk (one matmul, no merging), 128k–256k ones in a few, all within the same bound.
GPU_VOCAB_CHUNK = 1 << 16
GPU_LOGITS_BUDGET = 1 << 28
# Below this many logits per block, an out-of-memory error is not the LM head's fault.
MIN_LOGITS_BUDGET = 1 << 20
# CPU: statistics passes go over 2 MiB of logits at a time (an L2 cache's worth).
CPU_CACHE_ELEMENTS = 1 << 19


@dataclass
class _InFlight:
    batch: Batch
    floats: torch.Tensor
    ints: torch.Tensor
    ready: torch.cuda.Event | None
    slot: Slot


@dataclass
class ScoringCounters:
    real_tokens: int = 0  # window tokens the decoder read (scored or context)
    padded_tokens: int = 0  # rows × width it computed
    oom_splits: int = 0

    @property
    def padding_fraction(self) -> float:
        return 1 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


class Scorer:
    """Scores documents with one loaded model under one run's options. `routing` is the worker's
    LinearRouting, shared by the scorers it builds (None: this scorer measures its own)."""

    def __init__(self, loaded: LoadedModel, options: RunOptions, *, max_batch_tokens: int, pack: bool = False,
                 compile: bool = False, pool_tokens: int | None = None, routing: LinearRouting | None = None):
        self.loaded = loaded
        self.routing = routing if routing is not None else LinearRouting()
        self.options = options
        self.max_length = min(options.max_length, loaded.max_positions or options.max_length)
        self.max_batch_tokens = max(max_batch_tokens, self.max_length)
        self.pack = pack
        self.pool_tokens = pool_tokens or max(MIN_POOL_TOKENS, 8 * self.max_batch_tokens)
        self.cuda = loaded.device.type == "cuda"
        model = loaded.model
        if not self.cuda:
            if compile:
                plain_linears(model)
            else:
                self.routing.route_linears(model)
            if loaded.dtype != torch.float32:  # half-precision CPU kernels keep one kernel per shape
                use_f32_attention(model)
        self.decoder = model.base_model
        self.lm_head = model.get_output_embeddings()
        self.logit_transform = _logit_transform(model)
        self.logits_budget = GPU_LOGITS_BUDGET if self.cuda else LOGITS_BUDGET
        self.vocab_chunk = GPU_VOCAB_CHUNK if self.cuda else None
        self.cache_elements = None if self.cuda else CPU_CACHE_ELEMENTS
        layers = getattr(self.decoder, "layers", None) or getattr(self.decoder, "h", None)
        self.decode = Compiled(self._decode, enabled=compile, blocks=list(layers) if layers is not None else None)
        self.partials = Compiled(chunk_partials, enabled=compile)
        self.counters = ScoringCounters()
        self.staging = Staging(top_k=options.top_k, max_batch_tokens=self.max_batch_tokens, pin=self.cuda)

    def spans(self, n_tokens: int) -> list[Span]:
        if self.options.window == WINDOW_ROLLING:
            return rolling_spans(n_tokens, self.max_length)
        return strided_spans(n_tokens, self.max_length, min(self.options.stride, self.max_length - 1))

    def windows(self, tokens: list[int]) -> list[Window]:
        return windows_of(tokens, self.loaded.prefix_token_id, self.spans(len(tokens)))

    def score(
        self, documents: list[tuple[int, str]], *, on_progress: Callable[[int, int], None] | None = None,
        check: Callable[[], None] | None = None,
    ) -> list[DocumentScores]:
        """Score (document id, text) pairs as one pool; results in the given order.
        `on_progress(documents_done, tokens_done)` after each batch; `check()` may raise to abort."""
        [(_, results)] = self.score_shards([ShardInput(None, documents)], on_progress=on_progress, check=check,
                                           pool_tokens=1 << 62)
        return results

    @torch.inference_mode()
    def score_shards(
        self, shards: Iterable[ShardInput], *, on_progress: Callable[[int, int], None] | None = None,
        check: Callable[[], None] | None = None, pool_tokens: int | None = None,
    ) -> Iterator[tuple[object, list[DocumentScores]]]:
        """Score a stream of shards, pooled; yields (shard key, its documents' scores) per shard, in
        order, as soon as its pool is done. Progress is cumulative over the stream."""
        feeder = Feeder(shards, self._pool, pool_tokens or self.pool_tokens)
        done = [0, 0]
        try:
            for pool in feeder:
                self._score_pool(pool, check, on_progress, done)
                done[0] += len(pool.document_ids)
                yield from pool.results()
        finally:
            feeder.close()

    def _pool(self, shards: list[ShardInput]) -> Pool:
        texts = [text for shard in shards for _, text in shard.documents]
        ids, offsets = [], []
        if texts:
            encoding = self.loaded.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                                             return_attention_mask=False)
            ids, offsets = encoding["input_ids"], encoding["offset_mapping"]

        def plan(lengths: np.ndarray):
            return plan_batches(lengths, self.max_batch_tokens, pack=self.pack)

        return Pool(shards, (ids, offsets), self.loaded.prefix_token_id, self.spans, self.options.top_k, plan,
                    pack=self.pack)

    def _score_pool(self, pool: Pool, check, on_progress, done: list[int]) -> None:
        in_flight: deque[_InFlight] = deque()
        for batch in pool.batches:
            if check is not None:
                check()
            in_flight.extend(self._launch_safely(pool, batch))
            # On a GPU one batch stays in flight: its results copy back while the next one computes.
            while len(in_flight) > (1 if self.cuda else 0):
                self._finish(pool, in_flight.popleft(), on_progress, done)
        while in_flight:
            self._finish(pool, in_flight.popleft(), on_progress, done)

    def _finish(self, pool: Pool, job: _InFlight, on_progress, done: list[int]) -> None:
        if job.ready is not None:
            job.ready.synchronize()
        floats = job.floats.numpy()
        if not np.isfinite(floats).all():
            self.staging.release(job.slot)
            raise PermanentError(
                f"the model produced non-finite log-probabilities in {self.options.dtype} (an overflow: fp16 "
                "tops out at 65504); score this run in bfloat16 or float32"
                if self.options.dtype == DTYPE_FLOAT16 else
                f"the model produced non-finite log-probabilities in {self.options.dtype}: its weights hold NaN/inf "
                "values or its activations overflow"
            )
        pool.scatter(job.batch, floats, job.ints.numpy())
        self.staging.release(job.slot)  # its contents are copied out: the next batch may reuse it
        done[1] += len(job.batch.dest)
        if on_progress is not None:
            on_progress(done[0] + pool.documents_done(), done[1])

    def _launch_safely(self, pool: Pool, batch: Batch) -> list[_InFlight]:
        try:
            return [self._launch(batch)]
        except torch.OutOfMemoryError:
            if self.cuda:
                torch.cuda.empty_cache()
            halves = split(batch.placement)
            if len(halves) == 1:
                if self.logits_budget <= MIN_LOGITS_BUDGET:
                    raise
                self.logits_budget //= 2
                return self._launch_safely(pool, batch)
            self.counters.oom_splits += 1
            # Later pools are planned at the size that fitted.
            self.max_batch_tokens = max(self.max_length, batch.padded_tokens // 2)
            return [job for half in halves for job in self._launch_safely(pool, build(pool.windows, half, pack=pool.pack))]

    def _launch(self, batch: Batch) -> _InFlight:
        """Queue one batch on the device; on a GPU this returns before the work is done."""
        arrays = [batch.input_ids, batch.flat_index, batch.targets]
        if batch.position_ids is not None:
            arrays.append(batch.position_ids)
        slot = self.staging.acquire(sum(a.size for a in arrays), len(batch.flat_index))
        try:
            return self._launch_in(slot, batch, arrays)
        except BaseException:
            if self.cuda:  # copies from this slot may still be queued: let them finish before reuse
                torch.cuda.synchronize(self.loaded.device)
            self.staging.release(slot)
            raise

    def _launch_in(self, slot: Slot, batch: Batch, arrays: list[np.ndarray]) -> _InFlight:
        host, layout = pack_inputs(slot, arrays)
        # One upload per batch: every input array travels in the same buffer.
        device_inputs = host.to(self.loaded.device, non_blocking=True) if self.cuda else host
        input_ids, flat_index, targets, *position_ids = unpack_inputs(device_inputs, layout)
        # The decoder gets tensors of its own, not views at varying offsets into one buffer: a
        # compiled graph may guard on a view's base and offset, and recompile batch after batch.
        hidden = self.decode(input_ids.clone(), position_ids[0].clone() if position_ids else None)
        selected = hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat_index)
        stats = stats_from_hidden(
            selected, self.lm_head, targets, self.options.top_k, linear=self.routing.linear_f32,
            logit_transform=self.logit_transform, budget=self.logits_budget, vocab_chunk=self.vocab_chunk, partials=self.partials,
            cache_elements=self.cache_elements,
        )
        # Two transfers per batch instead of six: every float field, then every integer field.
        n = len(batch.flat_index)
        floats, ints = slot.floats[:n], slot.ints[:n]
        floats.copy_(torch.cat([stats.logprob[:, None], stats.entropy[:, None], stats.sum_p2[:, None], stats.top_logprobs], 1),
                     non_blocking=self.cuda)
        ints.copy_(torch.cat([stats.rank[:, None], stats.top_ids], 1).to(torch.int32), non_blocking=self.cuda)
        self.counters.real_tokens += batch.real_tokens
        self.counters.padded_tokens += batch.padded_tokens
        ready = None
        if self.cuda:
            ready = torch.cuda.Event()
            ready.record(torch.cuda.current_stream(self.loaded.device))  # the model's GPU, not the current one
        return _InFlight(batch, floats, ints, ready, slot)

    def _decode(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None) -> torch.Tensor:
        return self.decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state


def _logit_transform(model):
    """Architectures whose LM head output is not the final logits (Gemma 2/3 soft-capping)."""
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        return lambda logits: torch.tanh(logits / cap) * cap
    return None

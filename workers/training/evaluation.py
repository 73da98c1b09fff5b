"""The experiment's own held-out evaluation of each checkpoint, with the model still in memory: what the
scorer's stored per-token fields cannot give — nucleus coverage (needs the mass ranked above the true
token), post-hoc temperature scaling (needs the logits) — plus the CE, ECE and Brier of the same tokens,
and at the last step a few sampled continuations of fixed held-out prompts.

The held-out corpus is read as one token stream (as in training) cut into consecutive windows of
seq_len + 1 tokens, the first EVAL_TOKENS targets of it; every target is predicted once, with at most
seq_len tokens of context. Summaries are app.analytics.distribution / calibration (float64).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from app.analytics.calibration import reliability
from app.analytics.distribution import entropy_vs_loss, fit_temperature, nucleus_coverage
from workers.training.data import tokenize_corpus

EVAL_TOKENS = 16_384  # held-out targets per checkpoint: seed noise of the CE ≈ 0.01 nats at this size
EVAL_BATCH = 16
# Logits kept for the temperature fit: at most this many elements (rows × vocabulary), 64 MiB of
# float32 (8,192 tokens of a 2,048-token vocabulary); its NLL before and after is on the same tokens.
TEMPERATURE_ELEMENTS = 2**24
# Samples: the first SAMPLE_PROMPTS held-out documents' first PROMPT_TOKENS tokens, continued by
# SAMPLE_TOKENS tokens of nucleus sampling (top-p SAMPLE_TOP_P) from a generator seeded with SAMPLE_SEED,
# the same for every model, so that continuations differ by the model alone.
SAMPLE_PROMPTS, PROMPT_TOKENS, SAMPLE_TOKENS, SAMPLE_TOP_P, SAMPLE_SEED = 3, 24, 48, 0.9, 0


class HeldoutEvaluator:
    def __init__(self, windows: torch.Tensor, *, device: torch.device, tokenizer=None,
                 prompts: list[torch.Tensor] = ()):
        self.windows, self.device, self.tokenizer, self.prompts = windows, device, tokenizer, list(prompts)

    @classmethod
    def from_texts(cls, tokenizer, texts: list[str], *, seq_len: int, device: torch.device) -> HeldoutEvaluator:
        ids = torch.from_numpy(tokenize_corpus(tokenizer, texts).ids.astype(np.int64))
        n_windows = max(0, min(math.ceil(EVAL_TOKENS / seq_len), (len(ids) - 1) // seq_len))
        windows = torch.stack([ids[i * seq_len:i * seq_len + seq_len + 1] for i in range(n_windows)]) \
            if n_windows else torch.empty(0, seq_len + 1, dtype=torch.int64)
        prompts = [torch.from_numpy(tokenize_corpus(tokenizer, [text]).ids[:PROMPT_TOKENS].astype(np.int64))
                   for text in texts[:SAMPLE_PROMPTS] if text.strip()]
        return cls(windows, device=device, tokenizer=tokenizer, prompts=prompts)

    @torch.no_grad()
    def metrics(self, model: torch.nn.Module) -> dict | None:
        """Held-out CE, perplexity, ECE, Brier, nucleus coverage, entropy vs loss, temperature scaling."""
        if not len(self.windows):
            return None
        model.eval()
        columns: dict[str, list[torch.Tensor]] = {k: [] for k in ("loss", "entropy", "confidence", "correct",
                                                                   "brier", "above")}
        kept_logits, kept_targets, kept_rows = [], [], 0
        for batch in self.windows.split(EVAL_BATCH):
            batch = batch.to(self.device)
            logits = model(input_ids=batch[:, :-1]).logits.float()
            logits, targets = logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)
            for name, values in token_statistics(logits, targets).items():
                columns[name].append(values.double().cpu())
            room = TEMPERATURE_ELEMENTS // logits.shape[1] - kept_rows
            if room > 0:
                kept_logits.append(logits[:room].cpu())
                kept_targets.append(targets[:room].cpu())
                kept_rows += len(kept_targets[-1])
        data = {name: torch.cat(parts).numpy() for name, parts in columns.items()}
        return summarise(data, torch.cat(kept_logits), torch.cat(kept_targets))

    @torch.no_grad()
    def samples(self, model: torch.nn.Module) -> list[dict]:
        model.eval()
        generator = torch.Generator().manual_seed(SAMPLE_SEED)
        with one_cpu_thread():
            return [{"prompt": self.tokenizer.decode(prompt.tolist(), skip_special_tokens=True),
                     "continuation": self.tokenizer.decode(continue_prompt(model, prompt, generator, self.device),
                                                           skip_special_tokens=True)}
                    for prompt in self.prompts]


@contextlib.contextmanager
def one_cpu_thread():
    """Sampling runs one position per forward pass: nothing for intra-op threads to share, and on a
    busy CPU their hand-offs made it 30× slower (measured on 2 shared cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def continue_prompt(model, prompt: torch.Tensor, generator: torch.Generator, device: torch.device) -> list[int]:
    """SAMPLE_TOKENS token ids sampled after `prompt`, one forward pass per token over the key/value cache
    (PROMPT_TOKENS + SAMPLE_TOKENS is within every preset's context)."""
    out = model(input_ids=prompt[None].to(device), use_cache=True)
    tokens: list[int] = []
    for _ in range(SAMPLE_TOKENS):
        token = nucleus_sample(out.logits[0, -1].float().cpu(), SAMPLE_TOP_P, generator)
        tokens.append(int(token))
        out = model(input_ids=token.view(1, 1).to(device), cache=out.cache, use_cache=True)
    return tokens


def token_statistics(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per token: loss, entropy, top-1 confidence and correctness, Brier, mass ranked above the target."""
    logprobs = torch.log_softmax(logits, dim=1)
    probs = logprobs.exp()
    p_true = probs.gather(1, targets[:, None])
    confidence, top1 = probs.max(dim=1)
    return {
        "loss": -logprobs.gather(1, targets[:, None]).squeeze(1),
        "entropy": -(probs * logprobs).sum(dim=1),
        "confidence": confidence,
        "correct": (top1 == targets).float(),
        "brier": ((probs * probs).sum(dim=1) - 2.0 * p_true.squeeze(1) + 1.0).clamp(0.0, 2.0),
        "above": torch.where(probs > p_true, probs, 0.0).sum(dim=1),
    }


def summarise(data: dict[str, np.ndarray], logits: torch.Tensor, targets: torch.Tensor) -> dict:
    ce = float(data["loss"].mean())
    logits64 = logits.double()

    def nll_at(temperature: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits64 / temperature, targets))

    temperature, nll_after = fit_temperature(nll_at)
    entropy = entropy_vs_loss(data["entropy"], data["loss"])
    return {
        "tokens": int(data["loss"].size), "ce": ce, "perplexity": math.exp(ce),
        "ece": reliability(data["confidence"], data["correct"])["ece"], "brier": float(data["brier"].mean()),
        "top1_accuracy": float(data["correct"].mean()),
        "nucleus_coverage": nucleus_coverage(data["above"]), "mean_entropy": entropy["mean_entropy"],
        "entropy_bins": entropy["bins"],
        "temperature": temperature, "temperature_tokens": int(len(targets)), "nll_before_temperature": nll_at(1.0),
        "nll_after_temperature": nll_after,
    }


def nucleus_sample(logits: torch.Tensor, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One token from the smallest set of most probable tokens whose mass reaches top_p."""
    probs, order = torch.softmax(logits.double(), dim=0).sort(descending=True)
    inside = (probs.cumsum(0) - probs) < top_p  # the mass ranked above a token is below top_p
    kept = torch.where(inside, probs, 0.0)
    return order[torch.multinomial(kept / kept.sum(), 1, generator=generator)[0]]

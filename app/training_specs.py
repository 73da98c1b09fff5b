"""What a training job is asked to do — loss specs, model presets, the request's limits — without torch.

The API validates a request (and shows the presets) without importing torch, and the worker parses
the same payload with the same code (app.schemas.training.TrainingRequest, built on what is here),
so a spec the API accepted is a spec the trainer understands.
Everything here raises ValueError with a message written for the person who typed the spec.

Loss specs (softmax over the vocabulary unless stated; p = probability of the true token):

    ce                        −log p
    focal:γ                   −(1−p)^γ log p                                       (Lin et al. 2017)
    poly1:ε                   −log p + ε(1−p)                                      (Leng et al. 2022)
    polyfocal:ε:γ             (1−p)^γ(−log p) + ε(1−p)^(γ+1)
    focal-schedule:γ0->γ1     focal with γ moved linearly from γ0 (first step) to γ1 (last step)
    flsd53                    focal with γ=5 where p<0.2, else γ=3                 (Mukhoti et al. 2020)
    sigmoid-polyfocal:ε:γ:α   one-vs-all sigmoid over every vocabulary logit, α-balanced focal term
                              + ε(1−p_t)^(γ+1), summed over the vocabulary (the detection-style
                              snippet often pasted into LM code; here so that its effect can be seen)
    mile:γ                    −H(p)^γ log p, H = entropy of the predicted distribution (Su et al. 2023,
                              MiLe, arXiv 2310.19531)
    focal-adaptive:γmax       focal with γ_t = γmax·(1 − p̄_t), p̄_t = the batch's mean p (our rule:
                              full focal while tokens are hard, → CE as the model learns them)
    rho1:RATIO:REFERENCE      CE on the RATIO share of the batch's tokens with the largest excess loss
                              (−log p − (−log p_ref)) against the REFERENCE checkpoint (SERIES@STEP,
                              SERIES or a checkpoint id; same tokenizer) (Lin et al. 2024, Rho-1,
                              arXiv 2404.07965)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Loss specs

CE, FOCAL, POLY1, POLYFOCAL = "ce", "focal", "poly1", "polyfocal"
FOCAL_SCHEDULE, FLSD53, SIGMOID_POLYFOCAL = "focal-schedule", "flsd53", "sigmoid-polyfocal"
MILE, FOCAL_ADAPTIVE, RHO1 = "mile", "focal-adaptive", "rho1"

# name -> (parameter names in spec order, usage shown in error messages)
LOSS_FORMS: dict[str, tuple[tuple[str, ...], str]] = {
    CE: ((), "ce"),
    FOCAL: (("gamma",), "focal:γ (e.g. focal:2)"),
    POLY1: (("epsilon",), "poly1:ε (e.g. poly1:1)"),
    POLYFOCAL: (("epsilon", "gamma"), "polyfocal:ε:γ (e.g. polyfocal:1:2)"),
    FOCAL_SCHEDULE: (("gamma", "gamma_end"), "focal-schedule:γ0->γ1 (e.g. focal-schedule:0->2)"),
    FLSD53: ((), "flsd53"),
    SIGMOID_POLYFOCAL: (("epsilon", "gamma", "alpha"), "sigmoid-polyfocal:ε:γ:α (e.g. sigmoid-polyfocal:1:2:0.25)"),
    MILE: (("gamma",), "mile:γ (e.g. mile:1)"),
    FOCAL_ADAPTIVE: (("gamma",), "focal-adaptive:γmax (e.g. focal-adaptive:2)"),
    RHO1: (("ratio", "reference"), "rho1:RATIO:REFERENCE (e.g. rho1:0.6:myexp-ce@300)"),
}
# Losses whose per-token value depends on the whole batch (its mean p, its excess-loss ranking):
# the trainer scores the batch once without gradients before the loss (losses.batch_context).
BATCH_LOSSES = frozenset({FOCAL_ADAPTIVE, RHO1})
LOSS_KINDS = tuple(LOSS_FORMS)

# γ far above 10 makes (1−p)^γ underflow for almost every token: nothing left to learn from.
MAX_GAMMA = 20.0
# ε < −1 makes Poly-1 decrease as p grows for some p (the loss would reward wrong answers).
MIN_EPSILON = -1.0
MAX_EPSILON = 100.0
# FLSD-53 (Mukhoti et al. 2020): γ=5 for tokens with p < 0.2, γ=3 otherwise.
FLSD53_THRESHOLD, FLSD53_GAMMA_LOW_P, FLSD53_GAMMA_HIGH_P = 0.2, 5.0, 3.0
_PARAM_NAMES = {"gamma": "γ (gamma)", "gamma_end": "γ1 (final gamma)", "epsilon": "ε (epsilon)", "alpha": "α (alpha)",
                "ratio": "RATIO (share of tokens trained on)", "reference": "REFERENCE (checkpoint)"}
# A rho1 reference: a checkpoint id, a series name, or SERIES@STEP (series names as SERIES_NAME below).
RHO1_REFERENCE = re.compile(r"^(\d+|[A-Za-z0-9][A-Za-z0-9._-]{0,149}(@\d+)?)$")


@dataclass(frozen=True)
class LossSpec:
    """A parsed loss spec. `text` is the canonical spelling (e.g. "focal:2", "focal-schedule:0->2")."""

    kind: str
    gamma: float = 0.0
    gamma_end: float | None = None
    epsilon: float = 0.0
    alpha: float | None = None
    ratio: float | None = None
    reference: str | None = None

    @property
    def text(self) -> str:
        n = _number_text
        return {
            CE: "ce", FLSD53: "flsd53",
            FOCAL: f"focal:{n(self.gamma)}",
            POLY1: f"poly1:{n(self.epsilon)}",
            POLYFOCAL: f"polyfocal:{n(self.epsilon)}:{n(self.gamma)}",
            FOCAL_SCHEDULE: f"focal-schedule:{n(self.gamma)}->{n(self.gamma_end or 0.0)}",
            SIGMOID_POLYFOCAL: f"sigmoid-polyfocal:{n(self.epsilon)}:{n(self.gamma)}:{n(self.alpha or 0.0)}",
            MILE: f"mile:{n(self.gamma)}", FOCAL_ADAPTIVE: f"focal-adaptive:{n(self.gamma)}",
            RHO1: f"rho1:{n(self.ratio or 0.0)}:{self.reference}",
        }[self.kind]

    @property
    def slug(self) -> str:
        """The spec as a file- and URL-safe name part: "focal-schedule:0->2" -> "focal-schedule-0-to-2"."""
        return re.sub(r"[^A-Za-z0-9.\-]+", "_", self.text.replace("->", "-to-").replace(":", "-"))

    def gamma_at(self, step: int, total_steps: int) -> float:
        """γ of the update with 0-based index `step` out of `total_steps` (focal-schedule: γ0 at the
        first update, γ1 at the last, linear in between)."""
        if self.kind != FOCAL_SCHEDULE or self.gamma_end is None:
            return self.gamma
        if total_steps <= 1:
            return self.gamma
        t = min(max(step, 0), total_steps - 1) / (total_steps - 1)
        return self.gamma + (self.gamma_end - self.gamma) * t

    def as_meta(self) -> dict:
        return {"loss": self.text, "loss_kind": self.kind, **{k: v for k, v in asdict(self).items() if k != "kind"}}


def parse_loss_spec(text: str) -> LossSpec:
    """Parse "focal:2", "polyfocal:1:2", "focal-schedule:0->2", ... Raises ValueError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty loss spec; expected one of: {_usage_list()}")
    name, _, rest = text.strip().partition(":")
    name = name.lower()  # the reference of rho1 names a series: its case is kept
    if name not in LOSS_FORMS:
        raise ValueError(f"unknown loss {text.strip()!r}; expected one of: {_usage_list()}")
    names, usage = LOSS_FORMS[name]
    if name == FOCAL_SCHEDULE:
        parts = rest.split("->") if rest else []
    else:
        parts = rest.split(":") if rest else []
    if len(parts) != len(names):
        if not names:
            raise ValueError(f"loss {text.strip()!r}: {name} takes no parameters; write just {usage}")
        raise ValueError(
            f"loss {text.strip()!r}: {name} needs {len(names)} parameter{'s' if len(names) > 1 else ''} "
            f"({', '.join(_PARAM_NAMES[n] for n in names)}), got {len(parts)}; write {usage}"
        )
    values = {n: part.strip() if n == "reference" else _number(text.strip(), n, part) for n, part in zip(names, parts)}
    for key in ("gamma", "gamma_end"):
        if key in values and not 0.0 <= values[key] <= MAX_GAMMA:
            raise ValueError(
                f"loss {text.strip()!r}: {_PARAM_NAMES[key]} must be ≥ 0 and ≤ {MAX_GAMMA:g}, got {values[key]:g}"
            )
    if "epsilon" in values and not MIN_EPSILON <= values["epsilon"] <= MAX_EPSILON:
        raise ValueError(
            f"loss {text.strip()!r}: ε (epsilon) must be between {MIN_EPSILON:g} and {MAX_EPSILON:g}, got "
            f"{values['epsilon']:g} (below −1 the loss would reward confident wrong answers)"
        )
    if "alpha" in values and not 0.0 <= values["alpha"] <= 1.0:
        raise ValueError(f"loss {text.strip()!r}: α (alpha) must be between 0 and 1, got {values['alpha']:g}")
    if "ratio" in values and not 0.0 < values["ratio"] <= 1.0:
        raise ValueError(f"loss {text.strip()!r}: RATIO must be in (0, 1] (the share of tokens trained on), "
                         f"got {values['ratio']:g}")
    if "reference" in values and not RHO1_REFERENCE.match(values["reference"]):
        raise ValueError(f"loss {text.strip()!r}: REFERENCE {values['reference']!r} must be a checkpoint id, a series "
                         "name or SERIES@STEP")
    return LossSpec(kind=name, **values)


def _number(spec: str, name: str, part: str) -> float:
    try:
        value = float(part.strip())
    except ValueError:
        raise ValueError(f"loss {spec!r}: {_PARAM_NAMES[name]} {part.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"loss {spec!r}: {_PARAM_NAMES[name]} must be a finite number, got {part.strip()!r}")
    return value


def _number_text(value: float) -> str:
    return f"{value:g}"


def _usage_list() -> str:
    return ", ".join(usage.split(" (")[0] for _, usage in LOSS_FORMS.values())


# ---------------------------------------------------------------------------------------------
# Model presets (torch-free numbers; workers.training.presets turns them into transformers configs)

ARCH_GPT2, ARCH_LLAMA = "gpt2", "llama"
TOKENIZER_BPE, TOKENIZER_SMOLLM2 = "bpe", "smollm2"
TOKENIZERS = (TOKENIZER_BPE, TOKENIZER_SMOLLM2)
SMOLLM2_VOCAB_SIZE = 49152
MIN_VOCAB_SIZE, MAX_VOCAB_SIZE = 512, 131_072  # below 512 a byte-level BPE has hardly any merges


@dataclass(frozen=True)
class Preset:
    name: str
    arch: str
    n_layer: int
    d_model: int
    n_head: int
    context: int  # positions the model has; the default seq_len and the scoring max_length
    vocab_size: int  # BPE vocabulary trained when none is given
    batch_size: int
    lr: float
    # Llama only: key/value heads (grouped-query attention) and the MLP width.
    n_kv_head: int | None = None
    d_ff: int | None = None
    note: str = ""
    # Measured with the default BPE vocabulary / with SmolLM2's 49152 tokens (tied embeddings).
    params: dict[str, int] = field(default_factory=dict)


# Sizes follow nanoGPT's habit: small models take a larger learning rate. Dropout is 0 everywhere
# (pretraining on more tokens than parameters does not overfit; and runs stay bit-reproducible).
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("tiny", ARCH_GPT2, n_layer=4, d_model=128, n_head=4, context=256, vocab_size=2048, batch_size=16,
           lr=3e-3, note="GPT-2, a few hundred steps in a couple of minutes on 2 CPU cores",
           params={"bpe": 1_088_256, "smollm2": 7_117_568}),
    Preset("small", ARCH_GPT2, n_layer=10, d_model=384, n_head=6, context=512, vocab_size=8192, batch_size=16,
           lr=1e-3, note="GPT-2, ~21M parameters; CPU-feasible for short runs, comfortable on a GPU",
           params={"bpe": 21_087_744, "smollm2": 36_816_384}),
    Preset("base", ARCH_GPT2, n_layer=12, d_model=768, n_head=12, context=1024, vocab_size=32768, batch_size=32,
           lr=6e-4, note="GPT-2 small shape (~110–124M); GPU",
           params={"bpe": 111_008_256, "smollm2": 123_591_168}),
    Preset("tiny-llama", ARCH_LLAMA, n_layer=4, d_model=128, n_head=4, n_kv_head=2, d_ff=352, context=256,
           vocab_size=2048, batch_size=16, lr=3e-3, note="Llama (RoPE, RMSNorm, SwiGLU, GQA), tiny",
           params={"bpe": 1_000_576, "smollm2": 7_029_888}),
    Preset("small-llama", ARCH_LLAMA, n_layer=10, d_model=384, n_head=6, n_kv_head=2, d_ff=1024, context=512,
           vocab_size=8192, batch_size=16, lr=1e-3, note="Llama, ~19M parameters",
           params={"bpe": 18_882_432, "smollm2": 34_611_072}),
    Preset("base-llama", ARCH_LLAMA, n_layer=30, d_model=576, n_head=9, n_kv_head=3, d_ff=1536, context=2048,
           vocab_size=49152, batch_size=16, lr=3e-3, note="SmolLM2-135M's shape; GPU",
           params={"bpe": 134_515_008, "smollm2": 134_515_008}),
)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


# ---------------------------------------------------------------------------------------------
# Limits of a training request (app.schemas.training.TrainingRequest holds the request itself)

MAX_STEPS = 1_000_000
# Each checkpoint is saved and scored: thousands of them would flood the queue and the disk.
MAX_CHECKPOINTS = 1000
MAX_BATCH_SIZE = 4096
MIN_SEQ_LEN = 8
SERIES_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$")


def save_steps(steps: int, save_every: int) -> list[int]:
    """Steps with a checkpoint: 0 (the untrained model), every save_every, and the last."""
    return sorted({0, *range(save_every, steps + 1, save_every), steps})


def train_directory(data_dir: Path, series: str) -> Path:
    """Where a training series' checkpoints are written (under the default model root, so the API may
    register and serve them)."""
    return data_dir / "models" / "train" / series

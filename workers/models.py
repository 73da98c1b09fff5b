"""Load a registered checkpoint safely: safetensors or GGUF only, local files only, no remote code.

GGUF files are dequantized once (≈ 10–30 s on a CPU) and cached as a safetensors directory keyed by
the file's sha256, so later loads — in any worker on this host — take a second.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Belt and braces: nothing in a worker may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.services.checkpoint_files import refuse_custom_code  # noqa: E402
from app.services.errors import DomainError  # noqa: E402
from app.vocab import DTYPE_BFLOAT16, DTYPE_FLOAT16, DTYPE_FLOAT32, FORMAT_GGUF, FORMAT_SAFETENSORS  # noqa: E402
from workers.context import PermanentError  # noqa: E402

log = logging.getLogger("focalscope.worker")

DTYPES = {DTYPE_FLOAT32: torch.float32, DTYPE_BFLOAT16: torch.bfloat16, DTYPE_FLOAT16: torch.float16}
# transformers builds a model with PreTrainedModel.tie_weights and the torch init functions swapped out
# for no-ops on the class (no_tie_weights, no_init_weights) and puts them back afterwards. Two threads
# building at once can put the no-op back as "the original": every later model of the process then
# comes out untied (a head of zeros or a meta tensor). One build at a time per process.
MODEL_BUILD_LOCK = threading.Lock()
# One GGUF conversion at a time per process: it swaps the gguf package's reader (one_reader_per_file).
GGUF_CONVERSION_LOCK = threading.Lock()
SAFE_LOAD = {"local_files_only": True, "trust_remote_code": False}
# For callers without settings: the setting's default (a real tokenizer loads in under a second).
TOKENIZER_TIMEOUT_S = Settings.model_fields["tokenizer_load_timeout"].default


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    # Token put before every document so that its first token is predicted too (lm-eval's choice:
    # BOS if the tokenizer has one, else EOS).
    prefix_token_id: int
    max_positions: int | None
    device: torch.device
    dtype: torch.dtype

    def display_vocabulary(self) -> list[str]:
        """How each token id reads as text (for top-k alternatives in the UI)."""
        size = max(len(self.tokenizer), self.model.get_output_embeddings().weight.shape[0])
        return [self.tokenizer.decode([i]) if i < len(self.tokenizer) else "" for i in range(size)]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PermanentError(f"device {device!r} requested but CUDA is not available on this worker")
    return resolved


def load_checkpoint(*, path: str, format: str, weights_sha256: str, cache_dir: Path, device: str, dtype: str,
                    tokenizer_timeout: float = TOKENIZER_TIMEOUT_S) -> LoadedModel:
    if format == FORMAT_GGUF:
        directory = gguf_as_safetensors(Path(path), weights_sha256, cache_dir)
    elif format == FORMAT_SAFETENSORS:
        directory = Path(path)
    else:
        raise PermanentError(f"unsupported checkpoint format {format!r}")
    return load_safetensors_dir(directory, device=resolve_device(device), dtype=DTYPES[dtype],
                                tokenizer_timeout=tokenizer_timeout)


def load_tokenizer_within(directory: Path, seconds: float) -> PreTrainedTokenizerBase:
    """A checkpoint's tokenizer, loaded in a thread that gets `seconds`. Tokenizer files are data
    from whoever made the checkpoint, and a crafted one can make the tokenizers library spin for
    ever (or raise anything): the job then fails with a clear error and the worker goes on to the
    next job. A thread that never returns cannot be killed; it is a daemon and idles the process
    only by its CPU time. Costs a thread start per model load, nothing per token."""
    outcome: dict = {}

    def load() -> None:
        try:
            outcome["tokenizer"] = AutoTokenizer.from_pretrained(directory, **SAFE_LOAD)
        except Exception as exc:  # noqa: BLE001  (whatever a broken file makes the library raise)
            outcome["error"] = exc

    thread = threading.Thread(target=load, name=f"tokenizer {directory.name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise PermanentError(f"{directory}: the tokenizer did not load within {seconds:g} s "
                             f"(FOCALSCOPE_TOKENIZER_LOAD_TIMEOUT); its files may be broken or hostile")
    if "error" in outcome:
        raise PermanentError(f"{directory}: the tokenizer failed to load: {outcome['error']}")
    return outcome["tokenizer"]


def load_safetensors_dir(directory: Path, *, device: torch.device, dtype: torch.dtype,
                         tokenizer_timeout: float = TOKENIZER_TIMEOUT_S) -> LoadedModel:
    if not directory.is_dir():
        raise PermanentError(f"checkpoint directory {directory} is gone")
    config = _config(directory)
    tokenizer = load_tokenizer_within(directory, tokenizer_timeout)
    try:
        model = causal_lm_from_dir(directory, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise PermanentError(f"cannot load checkpoint {directory}: {exc}") from exc
    if not tokenizer.is_fast:
        raise PermanentError(f"{directory}: a fast tokenizer (tokenizer.json) is needed for character offsets")
    # Documents are cut into windows by the scorer; the tokenizer's length warning would be noise.
    tokenizer.model_max_length = int(1e30)
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prefix is None:
        raise PermanentError(f"{directory}: the tokenizer has neither a BOS nor an EOS token to start documents with")
    model.to(device).eval()
    return LoadedModel(
        model=model, tokenizer=tokenizer, prefix_token_id=int(prefix),
        max_positions=getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None),
        device=device, dtype=dtype,
    )


def _config(directory: Path):
    try:
        # Custom architectures ship Python code with the weights; we never run it. Registration
        # refuses such checkpoints with the same check; files changed since are caught here.
        refuse_custom_code(directory)
    except DomainError as refused:
        raise PermanentError(refused.message) from None
    try:
        return AutoConfig.from_pretrained(directory, **SAFE_LOAD)
    except (OSError, ValueError) as exc:
        raise PermanentError(f"{directory}: unsupported model config: {exc}") from exc


def causal_lm_from_dir(directory: Path, *, dtype: torch.dtype):
    """A safetensors checkpoint directory as a causal LM, every weight loaded: a head the config
    ties and the checkpoint omits is tied by hand; weights left unloaded (meta) are an error."""
    with MODEL_BUILD_LOCK:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, use_safetensors=True, **SAFE_LOAD)
    _tie_head_if_configured(model, _saved_names(directory))
    if unloaded := [name for name, parameter in model.named_parameters() if parameter.is_meta]:
        raise PermanentError(f"cannot load checkpoint {directory}: no weights for {', '.join(unloaded[:5])}")
    return model


def _tie_head_if_configured(model, saved: set[str]) -> None:
    """Tie the LM head to the input embeddings by hand where the config ties them and the
    checkpoint (whose weight names are `saved`) holds no head of its own. transformers ties them itself
    unless its tying was left switched off (see MODEL_BUILD_LOCK): a model loaded here never depends on it."""
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    if head is None or head.weight is embedding.weight or not getattr(model.config, "tie_word_embeddings", False):
        return
    head_names = {name for name, parameter in model.named_parameters(remove_duplicate=False) if parameter is head.weight}
    if not head_names & saved:
        head.weight = embedding.weight


def _saved_names(directory: Path) -> set[str]:
    from safetensors import safe_open

    names: set[str] = set()
    for path in directory.glob("*.safetensors"):
        with safe_open(path, "pt") as weights:
            names.update(weights.keys())
    return names


@contextmanager
def one_reader_per_file() -> Iterator[None]:
    """transformers parses a GGUF file three times to convert it (tokenizer, config, weights), each time
    with a new gguf.GGUFReader, which builds a numpy view for every part of every field: 6 s apiece for
    SmolLM2's 98,000 vocabulary and merge strings on 2 cores. Within this block every reader of one file
    is the same object (transformers only reads it). transformers imports the class from the gguf
    module at each call, so swapping the module's attribute reaches it (the same for gguf's tensor-name
    table, below); GGUF_CONVERSION_LOCK keeps two conversions of one process from swapping them at once."""
    import gguf

    original, original_name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[str, object] = {}

    def shared(path, *args, **kwargs):
        if args or kwargs:  # another mode than the plain read-only one: not shared
            return original(path, *args, **kwargs)
        key = os.fspath(path)
        if key not in readers:
            readers[key] = original(key)
        return readers[key]

    gguf.GGUFReader = shared
    # transformers maps tensor names module by module, building gguf's name table for the whole
    # architecture anew for each of the model's ~300 modules (8 s for SmolLM2); the table depends on
    # (architecture, layers) only and is only read.
    gguf.get_tensor_name_map = functools.cache(original_name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original, original_name_map


def gguf_as_safetensors(gguf_path: Path, sha256: str, cache_dir: Path) -> Path:
    """Dequantize a GGUF file into a float32 safetensors directory, once per file content."""
    target = cache_dir / "gguf" / sha256
    if (target / "config.json").is_file():
        return target
    if not gguf_path.is_file():
        raise PermanentError(f"GGUF file {gguf_path} is gone")
    log.info("converting %s to safetensors (once; cached in %s)", gguf_path.name, target)
    try:
        with GGUF_CONVERSION_LOCK, one_reader_per_file():
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, **SAFE_LOAD)
            with MODEL_BUILD_LOCK:
                quantized = AutoModelForCausalLM.from_pretrained(
                    gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32, **SAFE_LOAD
                )
    except (OSError, ValueError, KeyError) as exc:
        raise PermanentError(f"cannot read GGUF file {gguf_path.name}: {exc}") from exc
    # save_pretrained refuses a model still flagged as GGUF-quantized: copy the dequantized weights
    # into a freshly built model of the same config and save that.
    config = quantized.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    with MODEL_BUILD_LOCK:
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # A tied LM head can come back from the GGUF loader as a meta tensor (its weights are the
    # embedding's): load everything real, re-tie, and accept nothing else missing.
    state = {name: tensor for name, tensor in quantized.state_dict().items() if tensor.device.type != "meta"}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    _tie_head_if_configured(fresh, set(state))
    head, embedding = fresh.get_output_embeddings(), fresh.get_input_embeddings()
    tied = head is not None and head.weight.data_ptr() == embedding.weight.data_ptr()
    if unexpected or any(not (tied and name.endswith("lm_head.weight")) for name in missing):
        raise PermanentError(f"cannot convert {gguf_path.name}: missing {missing}, unexpected {unexpected}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}-", dir=target.parent))
    try:
        fresh.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        # Another worker may have finished the same conversion meanwhile; either copy is good.
        os.replace(staging, target) if not target.exists() else shutil.rmtree(staging)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target

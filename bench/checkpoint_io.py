"""`checkpoint_io`: what a trained checkpoint costs to register, publish and fetch, at a real model's size.

`python -m bench.checkpoint_io [--params 134515008]`: a checkpoint folder as a training job writes one
(model.safetensors in float32, config and tokenizer files, trainer_state/ with AdamW's two moments, so
three times the weights' bytes), random values, SmolLM2-135M's parameter count by default. Measured:

- registration's hashing pass (every file: the manifest, and the weight hash in the same pass) against
  the baseline of what registration hashed before manifests (the top-level *.safetensors only);
- publishing it (workers.checkpoint_publish) into a `focalscope serve` on loopback with an empty
  store, then again (nothing to send), and fetching it back through the API into an empty cache with
  every file's sha256 checked (workers.checkpoint_fetch), with the server's peak RSS.

Lines in results.jsonl: n_tokens holds the checkpoint's bytes and tokens_per_s bytes per second (there
are no tokens here); `baselines` the weights-only hash's bytes per second over the whole checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from app.core.config import Settings
from app.db.engine import make_engine, make_sessionmaker
from app.services import checkpoint_files, checkpoints
from app.services.checkpoint_manifest import HASH_CHUNK
from bench.common import cpu_name, peak_rss_mb, record
from bench.load import free_port, serve, server_peak_rss_mb
from workers.api_client import ApiClient
from workers.checkpoint_fetch import fetch_into_cache
from workers.checkpoint_publish import publish_checkpoint

SMOLLM2_PARAMS = 134_515_008
MIB = 1024 * 1024


def write_checkpoint(folder: Path, params: int) -> int:
    """A trained checkpoint's files with `params` random float32 weights; its total bytes."""
    rng = np.random.default_rng(0)
    (folder / "trainer_state").mkdir(parents=True)
    save_file({"model.embed_tokens.weight": rng.standard_normal(params, dtype=np.float32)}, str(folder / "model.safetensors"))
    moments = {f"optimizer.0.{name}": rng.standard_normal(params, dtype=np.float32) for name in ("exp_avg", "exp_avg_sq")}
    save_file(moments, str(folder / "trainer_state" / "state.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    # The other files at SmolLM2's sizes (their content is not read here, only hashed and sent).
    for name, size in (("tokenizer.json", 2_100_000), ("tokenizer_config.json", 3_500), ("training.json", 2_000),
                       ("trainer_state/state.json", 1_200)):
        (folder / name).write_text(json.dumps({"filler": "x" * size}))
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def weights_only_hash(folder: Path) -> str:
    """Registration's hash before manifests: the top-level *.safetensors, in name order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def register(url: str, files: checkpoint_files.CheckpointFiles) -> int:
    """Register the inspected checkpoint in the server's database, as a training job does; its id."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        checkpoint, _ = checkpoints.register_checkpoint(session=session, path=files.path, series="bench", step=1000,
                                                        files=files)
        session.commit()
        checkpoint_id = checkpoint.id
    engine.dispose()
    return checkpoint_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=int, default=SMOLLM2_PARAMS)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to results.jsonl")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as scratch:
        root = Path(scratch)
        folder = root / "worker" / "step-001000"
        size = write_checkpoint(folder, args.params)
        print(f"checkpoint: {size / MIB:,.0f} MiB ({args.params:,} float32 parameters + AdamW moments)", flush=True)
        _, old_s = timed(lambda: weights_only_hash(folder))
        files, full_s = timed(lambda: checkpoint_files.inspect(folder))
        print(f"registration's inspection, every file hashed: {full_s:.2f} s; the weights alone (before "
              f"manifests): {old_s:.2f} s", flush=True)
        lines = [("registration, every file hashed", full_s, {"weights_only_hash": size / old_s}, peak_rss_mb())]

        url, port, data_dir = f"sqlite:///{root / 'server.db'}", free_port(), root / "server"
        server = serve(url, data_dir, port)
        try:
            settings = Settings(_env_file=None, data_dir=root / "worker-data", api_url=f"http://127.0.0.1:{port}")
            sent, publish_s = timed(lambda: publish_checkpoint(folder, files.manifest, settings))
            again, republish_s = timed(lambda: publish_checkpoint(folder, files.manifest, settings))
            assert (sent, again) == (size, 0), (sent, again)
            checkpoint_id = register(url, files)
            shutil.rmtree(folder)  # the worker's host: the server serves its store
            client = ApiClient(settings.api_url, None)
            _, fetch_s = timed(lambda: fetch_into_cache(lambda name: client.file(checkpoint_id, name),
                                                        client.manifest(checkpoint_id), root / "cache"))
            rss = server_peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"publish into an empty store: {publish_s:.2f} s ({size / MIB / publish_s:,.0f} MiB/s), again: "
              f"{republish_s * 1000:.0f} ms; fetch through the API, every file verified: {fetch_s:.2f} s "
              f"({size / MIB / fetch_s:,.0f} MiB/s); server peak RSS {rss:.0f} MiB", flush=True)
        lines += [("publish to the API on loopback, empty store", publish_s, {}, rss),
                  ("fetch through the API on loopback, verified", fetch_s, {}, rss)]
    if not args.no_record:
        for label, seconds, baselines, memory in lines:
            record(bench="checkpoint_io", device=cpu_name(), model=f"{label}: {size / MIB:,.0f} MiB checkpoint, "
                   f"{seconds:.2f} s (n_tokens = bytes, tokens_per_s = bytes/s)", n_tokens=size,
                   tokens_per_s=size / seconds, baselines=baselines, peak_mem_mb=memory)


if __name__ == "__main__":
    main()

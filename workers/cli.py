"""`python -m workers` / `focalscope worker`: one worker process (one per GPU)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from pydantic import SecretStr

from app.core.config import Settings, checked_api_url
from app.core.log_format import configure_logging
from app.vocab import JOB_KINDS, KIND_SCORE, KIND_TRAIN

# Measured on an H100 (bench/RESULTS.md): 64k tokens per batch and pools of many shards keep the
# GPU busy; larger batches gained nothing.
GPU_MAX_BATCH_TOKENS = 65536
GPU_CLAIM_SHARDS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    parser.add_argument("--kinds", default=",".join(JOB_KINDS), help=f"job kinds to take (default: {','.join(JOB_KINDS)})")
    parser.add_argument("--max-batch-tokens", type=int,
                        help="padded tokens per forward pass, bounds memory (default: FOCALSCOPE_MAX_BATCH_TOKENS, "
                             f"else 4096 on a CPU and {GPU_MAX_BATCH_TOKENS} on a GPU)")
    parser.add_argument("--claim-shards", type=int,
                        help="shards of one run scored as one pool (default: FOCALSCOPE_CLAIM_SHARDS, else 1 on a CPU "
                             f"and {GPU_CLAIM_SHARDS} on a GPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (GPU; falls back to eager on errors)")
    parser.add_argument("--pack", action="store_true", help="pack several documents per row instead of length buckets")
    parser.add_argument("--exit-when-idle", action="store_true", help="stop once the queue has nothing for this worker")
    parser.add_argument("--name", help="worker name shown on its jobs (default: host:pid:device)")
    parser.add_argument("--api-url", type=_api_url,
                        help="fetch checkpoints this host lacks from this API, e.g. http://gpu-head:8000 "
                             "(default: FOCALSCOPE_API_URL)")
    parser.add_argument("--api-token", help="write-scope token for --api-url (default: FOCALSCOPE_API_TOKEN, which "
                                            "keeps it out of the process list)")
    parser.add_argument("--fetch-checkpoints", action="store_true",
                        help="never load a checkpoint from its registered path, always from the local cache, fetched "
                             "the first time (hosts where the same path may hold other files)")
    parser.add_argument("--metrics-port", type=int,
                        help="serve this worker's Prometheus metrics on http://HOST:PORT/metrics (default: none)")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 for a scraper on another host)")


def _api_url(value: str) -> str:
    try:
        return checked_api_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def worker_settings(args: argparse.Namespace, settings: Settings, device: str) -> Settings:
    """`settings` with the command line's worker options applied (a copy: the caller's stays as it was)."""
    update = {}
    gpu_defaults = {"max_batch_tokens": GPU_MAX_BATCH_TOKENS, "claim_shards": GPU_CLAIM_SHARDS}
    for name, gpu_default in gpu_defaults.items():
        if getattr(args, name):
            update[name] = getattr(args, name)
        elif device.startswith("cuda") and name not in settings.model_fields_set:
            update[name] = gpu_default  # not set anywhere: the GPU's own default
    update["compile"] = args.compile or settings.compile
    update["pack"] = args.pack or settings.pack
    if args.api_url:
        update["api_url"] = args.api_url
    if args.api_token:
        update["api_token"] = SecretStr(args.api_token)
    update["use_registered_paths"] = settings.use_registered_paths and not args.fetch_checkpoints
    return settings.model_copy(update=update)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.loop import Worker
    from workers.models import resolve_device

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = set(kinds) - set(JOB_KINDS)
    if unknown:
        raise SystemExit(f"error: unknown job kinds {', '.join(sorted(unknown))}; choose from {', '.join(JOB_KINDS)}")
    device = str(resolve_device(args.device))
    worker = Worker(worker_settings(args, settings, device), device=device, kinds=kinds, name=args.name)
    if args.metrics_port is not None:
        from workers.metrics import WorkerMetrics

        worker.metrics = WorkerMetrics(worker=worker.name, device=device)
        port = worker.metrics.serve(args.metrics_port, args.metrics_host)
        logging.getLogger("focalscope.worker").info("metrics on http://%s:%d/metrics", args.metrics_host, port)

    def _stop(signum, _frame):
        logging.getLogger("focalscope.worker").info("signal %d: stopping after the current batch", signum)
        # Not worker.stop() here: a signal handler runs on the main thread, possibly while that thread
        # holds the stop Event's internal lock (inside Event.wait), and Event.set() would deadlock.
        threading.Thread(target=worker.stop, daemon=True).start()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if KIND_SCORE in kinds or KIND_TRAIN in kinds:
        # Import the model stack now, not under the first job's lease: torch's import runs for seconds
        # with the GIL held (its C extension initialises), and on a loaded machine the job's heartbeat
        # thread starved long enough for the lease to run out.
        import workers.scoring.model_cache  # noqa: F401
        import workers.training.job  # noqa: F401
    worker.run_forever(exit_when_idle=args.exit_when_idle)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(log_format=settings.log_format)
    try:
        return run(args, settings)
    except KeyboardInterrupt:  # Ctrl-C before the worker's own handler is installed (still importing)
        return 130

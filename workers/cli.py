"""`python -m workers` / `focalscope worker`: one worker process (one per GPU)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from app.core.config import Settings
from app.vocab import JOB_KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    parser.add_argument("--kinds", default=",".join(JOB_KINDS), help=f"job kinds to take (default: {','.join(JOB_KINDS)})")
    parser.add_argument("--max-batch-tokens", type=int, help="padded tokens per forward pass (bounds memory)")
    parser.add_argument("--exit-when-idle", action="store_true", help="stop once the queue has nothing for this worker")
    parser.add_argument("--name", help="worker name shown on its jobs (default: host:pid:device)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.loop import Worker
    from workers.models import resolve_device

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = set(kinds) - set(JOB_KINDS)
    if unknown:
        raise SystemExit(f"error: unknown job kinds {', '.join(sorted(unknown))}; choose from {', '.join(JOB_KINDS)}")
    if args.max_batch_tokens:
        settings.max_batch_tokens = args.max_batch_tokens
    device = str(resolve_device(args.device))
    worker = Worker(settings, device=device, kinds=kinds, name=args.name)

    def _stop(signum, _frame):
        logging.getLogger("focalscope.worker").info("signal %d: stopping after the current batch", signum)
        # Not worker.stop() here: a signal handler runs on the main thread, possibly while that thread
        # holds the stop Event's internal lock (inside Event.wait), and Event.set() would deadlock.
        threading.Thread(target=worker.stop, daemon=True).start()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    worker.run_forever(exit_when_idle=args.exit_when_idle)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args, Settings())

"""The device a benchmark runs on, CPU or GPU alike: its name, synchronisation and peak memory."""

from __future__ import annotations

import gc

import torch

from bench.common import cpu_name, peak_rss_mb


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{cpu_name()} (torch {torch.__version__})"


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer stops when the work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on a GPU, peak resident memory on a CPU (MiB)."""
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else peak_rss_mb()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def free(device: torch.device) -> None:
    """Drop what the last measurement left behind (Python garbage, the CUDA allocator's cache)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

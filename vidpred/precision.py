"""The device that runs the model, and the arithmetic that is fast on it.

The device is resolved once (``resolve_device``); uint8 batches reach it as float through
``to_device_float``.

bf16 autocast runs convolutions in bfloat16 where the hardware has bf16 matrix units, and
keeps the weights, the optimizer, batch norm and the loss in float32. Measured on this
project's 2-core Xeon with AMX (default model, channels-last): training 43 -> 96 samples/s,
inference 31 -> 82 frames/s, and the shipped weights score 35.851 dB on the samples in bf16
against 35.852 in fp32. On a CPU without AMX, bf16 convolutions are emulated and slower than
fp32, so "auto" only picks bf16 where it pays: CUDA with bf16 support, or a CPU with AMX.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

import numpy as np
import torch

from .errors import SettingError

PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")  # auto: CUDA when present


def resolve_device(name: str) -> torch.device:
    """Returns the torch device for 'auto' | 'cpu' | 'cuda' ('auto' picks CUDA when present)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SettingError(lambda n: f"{n('device')} cuda: no CUDA device is available")
    return torch.device(name)


def to_device_float(
    batch: torch.Tensor, device: torch.device, channels_last: bool = False
) -> torch.Tensor:
    """uint8 (B, C, H, W) on the CPU -> float32 [0, 1] (B, C, H, W) on ``device``.

    On CUDA the uint8 batch goes through pinned memory with a non-blocking copy and becomes
    float on the GPU: a quarter of the bytes over the bus, and the copy overlaps the GPU.
    On the CPU NumPy converts it, on this thread: torch would hand the few hundred thousand
    elements to its thread pool, which costs 15-20 ms instead of 0.2 ms when other processes
    keep the cores busy (measured on 2 cores). Both divide in float32: the same bits.
    """
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True).float().div_(255.0)
    else:
        batch = torch.from_numpy(np.divide(batch.numpy(), np.float32(255.0), dtype=np.float32))
    return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """Returns the first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_has_amx_bf16() -> bool:
    """Returns True if the CPU has AMX bf16 tiles (Linux: the 'amx_bf16' cpuinfo flag)."""
    return "amx_bf16" in _cpuinfo().get("flags", "").split()


# CPU features that decide which arithmetic is fast (bench reports them).
REPORTED_FLAGS = ("amx_bf16", "amx_tile", "avx512f", "avx512_bf16", "avx2")


def describe_machine(device: torch.device) -> dict[str, object]:
    """Returns what decides this machine's speed, for ``vidpred bench``: the CPU's model name
    and its flags among REPORTED_FLAGS, torch's thread count and version, and the GPU's name
    when ``device`` is CUDA."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    machine: dict[str, object] = {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_flags": [f for f in REPORTED_FLAGS if f in flags],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    return machine


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """Returns the bf16 autocast context for ``device`` (a no-op when not ``enabled``)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)

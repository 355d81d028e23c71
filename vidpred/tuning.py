"""Which arithmetic is fastest on this machine, measured once and remembered.

Whether channels-last (NHWC) activations and bf16 autocast pay depends on the machine, not
the vendor: on a 2-core Xeon with AMX channels-last made fp32 training 10% faster and bf16
doubled it, while on a 2-core AMD EPYC without AMX channels-last made it 8-19% slower
(docs/speed.md). So the first time vidpred runs a model on a device ("auto" precision and
layout), it times a few training steps of the default model in each candidate arithmetic
and keeps the fastest. The choice is stored in the state folder (``vidpred.weights.state_dir``),
keyed by the CPU (or GPU), its flags, the thread count and the torch version: when any of
them changes, it is measured again.

Overrides: ``--precision fp32|bf16`` fixes the precision; ``VIDPRED_LAYOUT=channels-last``
or ``contiguous`` fixes the layout; ``VIDPRED_TUNING=off`` skips the measurement and uses
the rule of thumb (bf16 on CUDA and AMX, channels-last everywhere).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from .precision import autocast, cpu_has_amx_bf16, describe_machine

log = logging.getLogger(__name__)

LAYOUT_ENV = "VIDPRED_LAYOUT"
LAYOUTS = ("channels-last", "contiguous")
TUNING_ENV = "VIDPRED_TUNING"
TUNING_FILE = "arithmetic.json"
# Steps timed per candidate after WARMUP_STEPS untimed ones; the median is kept. About 2 s
# per candidate for the default model on a 2-core CPU.
WARMUP_STEPS, TIMED_STEPS = 2, 4


@dataclass(frozen=True)
class Arithmetic:
    """How the model computes on one device."""

    bf16: bool
    channels_last: bool
    # samples/s of each candidate measured, by name ("fp32 contiguous", ...); {} if not measured
    timings: dict[str, float]


def candidates(device: torch.device) -> list[tuple[bool, bool]]:
    """Returns the (bf16, channels_last) pairs worth timing on ``device``: fp32 in both
    layouts, and bf16 (channels-last, which it needs) where the hardware has bf16 units;
    emulated bf16 is several times slower and not worth the seconds."""
    pairs = [(False, False), (False, True)]
    has_bf16 = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_amx_bf16()
    if has_bf16:
        pairs.append((True, True))
    return pairs


def name_of(bf16: bool, channels_last: bool) -> str:
    return f"{'bf16' if bf16 else 'fp32'} {'channels-last' if channels_last else 'contiguous'}"


def training_step_rate(device: torch.device, bf16: bool, channels_last: bool) -> float:
    """Returns samples/s of the default model's forward and backward pass (batch 8 of 64 px
    crops, as training runs) on ``device`` in the given arithmetic."""
    from .model import ModelConfig, STResNet

    config = ModelConfig()
    model = STResNet(config).to(device).train()
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(8, 3 * len(config.input_offsets()), 64, 64, generator=generator)
    flows = torch.randn(8, 2, 64, 64, generator=generator)
    inputs, flows = (t.to(device).contiguous(memory_format=memory) for t in (inputs, flows))
    times = []
    for step in range(WARMUP_STEPS + TIMED_STEPS):
        start = time.perf_counter()
        with autocast(device, bf16):
            loss = model(inputs, flows if config.uses_flow else None).float().abs().mean()
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
    return 8 / statistics.median(times)


def rule_of_thumb(device: torch.device) -> Arithmetic:
    """The choice without measuring: bf16 on CUDA with bf16 and on CPUs with AMX,
    channels-last everywhere (what the AMX Xeon measured)."""
    bf16 = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_amx_bf16()
    return Arithmetic(bf16=bf16, channels_last=True, timings={})


def measure(
    device: torch.device,
    rate: Callable[[torch.device, bool, bool], float] = training_step_rate,
) -> Arithmetic:
    """Times each of ``candidates(device)`` with ``rate`` (samples/s) and returns the
    fastest."""
    pairs = candidates(device)
    timings = {name_of(*pair): rate(device, *pair) for pair in pairs}
    best = max(pairs, key=lambda pair: timings[name_of(*pair)])
    return Arithmetic(bf16=best[0], channels_last=best[1], timings=timings)


def _key(device: torch.device) -> dict:
    machine = describe_machine(device)
    return {"device": device.type, **machine}


_chosen: dict[str, Arithmetic] = {}


def choose(
    device: torch.device,
    rate: Callable[[torch.device, bool, bool], float] = training_step_rate,
) -> Arithmetic:
    """Returns the arithmetic for ``device``: remembered from an earlier measurement on this
    machine and torch version, else measured now (``measure``) and remembered. A state
    folder that cannot be written is not an error: the choice then lasts this process."""
    from .outputs import atomic_write_bytes
    from .weights import state_dir

    if os.environ.get(TUNING_ENV, "").lower() == "off":
        return rule_of_thumb(device)
    key = _key(device)
    memo = json.dumps(key, sort_keys=True)
    if memo in _chosen:
        return _chosen[memo]
    path = state_dir() / TUNING_FILE
    stored = _read(path)
    entry = stored.get(device.type)
    if isinstance(entry, dict) and entry.get("key") == key:
        try:
            arithmetic = Arithmetic(**entry["choice"])
        except (KeyError, TypeError):
            arithmetic = None
        if arithmetic is not None:
            _chosen[memo] = arithmetic
            return arithmetic
    log.warning(
        "measuring which arithmetic is fastest on this %s (once per machine and torch "
        "version; VIDPRED_TUNING=off skips it)",
        device.type,
    )
    arithmetic = measure(device, rate)
    log.info(
        "%s: %s",
        device.type,
        ", ".join(f"{k} {v:.1f} samples/s" for k, v in arithmetic.timings.items()),
    )
    stored[device.type] = {"key": key, "choice": asdict(arithmetic)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(stored, indent=1).encode()
        atomic_write_bytes(path, lambda f: f.write(text), fsync=False)
    except OSError as e:
        log.debug("could not remember the arithmetic in %s (%s)", path, e)
    _chosen[memo] = arithmetic
    return arithmetic


def _read(path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def layout_override() -> bool | None:
    """Returns the layout ``VIDPRED_LAYOUT`` fixes (True: channels-last), or None.

    Raises:
        ValueError: it names no layout.
    """
    text = os.environ.get(LAYOUT_ENV, "").strip().lower()
    if not text or text == "auto":
        return None
    if text not in LAYOUTS:
        raise ValueError(f"{LAYOUT_ENV} must be one of {LAYOUTS} or auto, got {text!r}")
    return text == "channels-last"

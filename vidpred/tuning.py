"""Which arithmetic is fastest on this machine, measured once and remembered.

Whether channels-last (NHWC) activations and bf16 autocast pay depends on the machine, not
the vendor: on a 2-core Xeon with AMX channels-last made fp32 training 10% faster and bf16
doubled it, while on a 2-core AMD EPYC without AMX channels-last made it 8-19% slower
(docs/speed.md). So the first time vidpred runs a model on a device ("auto" precision and
layout), it times a few training steps of the default model in each candidate arithmetic
and keeps the fastest. The choice is stored in the state folder (``vidpred.paths.state_dir``),
keyed by the CPU (or GPU), its flags, the thread count and the torch version: when any of
them changes, it is measured again. So is a stored choice that vidpred cannot have written (a
field of the wrong type or range, a file that is a FIFO or not JSON), with one warning line.

Each command resolves its arithmetic once (``arithmetic_for``) and passes it to the predictor
and the trainer: ``--precision fp32|bf16`` fixes the precision and ``--layout channels-last``
or ``contiguous`` the layout; ``VIDPRED_TUNING=off`` skips the measurement and uses the rule
of thumb (bf16 on CUDA and AMX, channels-last everywhere).

The training batch is chosen here too (``choose_batch``) when a run names none: 8 on a CPU;
on CUDA the smallest batch that trains within 90% of the fastest rate measured at doubling
batches, in whichever of fp32 and bf16 is faster at that batch. An H200 trains 30x more
samples/s at batch 512 than at 8, and bf16 beats fp32 there only from large batches.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import statistics
import time
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import torch

from .errors import VidpredError
from .precision import PRECISIONS, autocast, cpu_has_amx_bf16, describe_machine

log = logging.getLogger(__name__)

LAYOUTS = ("channels-last", "contiguous")
TUNING_ENV = "VIDPRED_TUNING"
TUNING_FILE = "arithmetic.json"
# The state file holds a few hundred bytes per device and batch measurement: 1 MiB is thousands
# of them. A bigger one is not ours.
TUNING_MAX_BYTES = 1 << 20
# Steps timed per candidate after WARMUP_STEPS untimed ones, in ROUNDS that alternate the
# candidates, so a slow spell of a busy machine does not land on one of them alone (with one
# block per candidate, a 2-core Xeon once chose the layout that infers 25% slower). The
# median of the rounds is kept. About 15 s in all for the default model on a 2-core CPU.
WARMUP_STEPS, TIMED_STEPS, ROUNDS = 2, 2, 3


@dataclass(frozen=True)
class Arithmetic:
    """How the model computes on one device."""

    bf16: bool
    channels_last: bool  # in training
    # samples/s of each training candidate measured, by name ("fp32 contiguous", ...), and
    # frames/s of each inference layout ("inference fp32 contiguous", ...); {}: not measured
    timings: dict[str, float]
    # In inference (render, eval), which may differ: on the 2-core AVX-512 Xeon the two
    # layouts trained within noise while channels-last inferred 17-19 frames/s against 11-15.
    channels_last_inference: bool = True


def has_bf16_units(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: CUDA with bf16 support, or a CPU with
    AMX. Elsewhere bf16 is emulated, several times slower, and not worth timing."""
    return torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_amx_bf16()


def candidates(device: torch.device) -> list[tuple[bool, bool]]:
    """Returns the (bf16, channels_last) pairs worth timing on ``device``: fp32 in both
    layouts, and bf16 (channels-last, which it needs) where the hardware has bf16 units."""
    pairs = [(False, False), (False, True)]
    if has_bf16_units(device):
        pairs.append((True, True))
    return pairs


def name_of(bf16: bool, channels_last: bool) -> str:
    return f"{'bf16' if bf16 else 'fp32'} {'channels-last' if channels_last else 'contiguous'}"


def training_step_rate(
    device: torch.device,
    bf16: bool,
    channels_last: bool,
    batch: int = 8,
    model_config=None,
    size: tuple[int, int] = (64, 64),
) -> float:
    """Returns samples/s of a model's forward and backward pass on ``device`` in the given
    arithmetic, on batches of ``batch`` samples of ``size`` (height, width): by default the
    default model on batches of 8 crops of 64 px, as training runs on a CPU.

    Raises:
        torch.cuda.OutOfMemoryError: the batch does not fit on the GPU.
    """
    return _rate(device, bf16, channels_last, batch, model_config, size, training=True)


def inference_rate(device: torch.device, bf16: bool, channels_last: bool) -> float:
    """Returns frames/s of the default model's forward pass on batches of 8 frames at the
    default working size of a 16:9 clip (96x172), as render and eval run it."""
    return _rate(device, bf16, channels_last, 8, None, (96, 172), training=False)


def _rate(
    device: torch.device,
    bf16: bool,
    channels_last: bool,
    batch: int,
    model_config,
    size: tuple[int, int],
    training: bool,
) -> float:
    """Returns samples/s of ``model_config``'s model (default: ModelConfig()) on random
    batches: the median of TIMED_STEPS after WARMUP_STEPS, each a forward and backward pass
    if ``training``, else a forward pass without autograd."""
    from .model import ModelConfig, STResNet

    config = model_config or ModelConfig()
    model = STResNet(config).to(device).train(training)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(batch, 3 * len(config.input_offsets()), *size, generator=generator)
    flows = torch.randn(batch, 2 * max(config.flow_pairs, 1), *size, generator=generator)
    inputs, flows = (t.to(device).contiguous(memory_format=memory) for t in (inputs, flows))
    flows = flows if config.uses_flow else None
    times = []
    with torch.inference_mode(not training):
        for step in range(WARMUP_STEPS + TIMED_STEPS):
            start = time.perf_counter()
            with autocast(device, bf16):
                output = model(inputs, flows)
            if training:
                output.float().abs().mean().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step >= WARMUP_STEPS:
                times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def rule_of_thumb(device: torch.device) -> Arithmetic:
    """The choice without measuring: bf16 on CUDA with bf16 and on CPUs with AMX,
    channels-last everywhere (what the AMX Xeon measured)."""
    return Arithmetic(bf16=has_bf16_units(device), channels_last=True, timings={})


def measure(
    device: torch.device,
    rate: Callable[[torch.device, bool, bool], float] = training_step_rate,
    infer_rate: Callable[[torch.device, bool, bool], float] = inference_rate,
) -> Arithmetic:
    """Times each of ``candidates(device)`` with ``rate`` (training samples/s) and keeps
    the fastest; then, in its precision, each layout with ``infer_rate`` (frames/s), for
    inference (bf16 keeps channels-last, which it needs). Candidates alternate over ROUNDS
    and each keeps its median."""
    pairs = candidates(device)
    timings = _alternated(
        {name_of(*pair): functools.partial(rate, device, *pair) for pair in pairs}
    )
    bf16, channels_last = max(pairs, key=lambda pair: timings[name_of(*pair)])
    inference_last = True
    if not bf16:
        layouts = {f"inference {name_of(False, last)}": last for last in (False, True)}
        rates = _alternated(
            {
                name: functools.partial(infer_rate, device, False, last)
                for name, last in layouts.items()
            }
        )
        timings.update(rates)
        inference_last = layouts[max(rates, key=rates.get)]
    return Arithmetic(bf16, channels_last, timings, channels_last_inference=inference_last)


def _alternated(runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Returns the median of ROUNDS calls of each of ``runs``, called in turn round by round."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            results[name].append(run())
    return {name: statistics.median(values) for name, values in results.items()}


def _key(device: torch.device) -> dict:
    machine = describe_machine(device)
    return {"device": device.type, **machine}


_chosen: dict[str, object] = {}  # choices made in this process, by slot and key


def choose(
    device: torch.device,
    rate: Callable[[torch.device, bool, bool], float] = training_step_rate,
    infer_rate: Callable[[torch.device, bool, bool], float] = inference_rate,
) -> Arithmetic:
    """Returns the arithmetic for ``device``: remembered from an earlier measurement on this
    machine and torch version, else measured now (``measure``) and remembered. A state
    folder that cannot be written is not an error: the choice then lasts this process."""
    if os.environ.get(TUNING_ENV, "").lower() == "off":
        return rule_of_thumb(device)

    def measured() -> Arithmetic:
        from .errors import shown
        from .paths import state_dir

        # Nothing is wrong: an info line, not a warning, that says what and why.
        log.info(
            "first run on this machine: timing which arithmetic (precision, memory layout) "
            "runs fastest on this %s; this happens once per machine and torch version and "
            "takes up to a minute; the result is remembered in %s (VIDPRED_TUNING=off "
            "skips it and uses a rule of thumb)",
            device.type,
            shown(state_dir() / TUNING_FILE),
        )
        arithmetic = measure(device, rate, infer_rate)
        log.info(
            "%s: %s",
            device.type,
            ", ".join(
                f"{k} {v:.1f} {'frames' if k.startswith('inference') else 'samples'}/s"
                for k, v in arithmetic.timings.items()
            ),
        )
        return arithmetic

    return _remembered(device.type, _key(device), Arithmetic, measured)


def _remembered(
    slot: str,
    key: dict,
    kind: type,
    measured: Callable[[], object],
    check: Callable[[object], str | None] | None = None,
):
    """Returns the ``kind`` dataclass stored under ``slot`` of the state file for ``key``
    (this process's memo first), else ``measured()``, which it stores. A stored choice whose
    fields have the wrong type or range (``_problem``, then ``check``, which returns why a
    choice does not fit) counts as absent: it is measured again, with one warning line. A
    state folder that cannot be written is not an error: the choice then lasts this process."""
    from .outputs import atomic_write_bytes, ignore_state, strict_json
    from .paths import state_dir

    memo = slot + json.dumps(key, sort_keys=True)
    if memo in _chosen:
        return _chosen[memo]
    path = state_dir() / TUNING_FILE
    stored = _read(path)
    entry = stored.get(slot)
    if entry is not None and not (isinstance(entry, dict) and "key" in entry):
        ignore_state(path, f"its {slot!r} entry is not a measurement", "measuring again")
    elif entry is not None and entry["key"] == key:
        choice = entry.get("choice")
        problem = _problem(kind, choice)
        if problem is None:
            choice = kind(**choice)
            problem = check(choice) if check is not None else None
        if problem is None:
            _chosen[memo] = choice
            return choice
        ignore_state(path, f"{slot}: {problem}", "measuring again")
    choice = measured()
    stored[slot] = {"key": key, "choice": asdict(choice)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = strict_json(stored, indent=1).encode()
        atomic_write_bytes(path, lambda f: f.write(text), fsync=False)
    except OSError as e:
        log.debug("could not remember the measurement in %s (%s)", path, e)
    _chosen[memo] = choice
    return choice


def _problem(kind: type, values: object) -> str | None:
    """Returns why ``values`` is not a stored ``kind`` (a field unknown, missing, or of the
    wrong type or range), or None. Numbers are counts (whole, at least 1) or rates (finite,
    not negative): a string where a flag belongs once reached autocast as its ``enabled``."""
    if not isinstance(values, dict):
        return "the choice is not a mapping"
    hints = typing.get_type_hints(kind)
    names = {f.name: f for f in fields(kind)}
    unknown = sorted(str(name) for name in values if name not in names)
    if unknown:
        return f"unknown field {unknown[0]!r} (written by another vidpred?)"
    for name, field in names.items():
        if name not in values:
            if field.default is MISSING and field.default_factory is MISSING:
                return f"{name!r} is missing"
            continue
        if not _fits(hints[name], values[name]):
            wanted = {bool: "true or false", int: "a whole number >= 1", str: "text"}
            return (
                f"{name!r} must be {wanted.get(hints[name], 'a mapping of names to rates')}, "
                f"got {json.dumps(values[name])[:40]}"
            )
    return None


def _fits(hint: object, value: object) -> bool:
    """Whether ``value`` read from JSON is a valid ``hint``: bool, int (a count), str, float
    (a rate) or dict[str, float] (rates by name)."""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if hint is str:
        return isinstance(value, str)
    if hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value) and value >= 0
    if typing.get_origin(hint) is dict:
        key_hint, value_hint = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _fits(key_hint, k) and _fits(value_hint, v) for k, v in value.items()
        )
    return False


# The training batch when none is given. On a CPU the step's cost grows with the batch, so a
# larger one gains little (measured in docs/speed.md) and only slows each step's feedback.
CPU_BATCH = 8
# On CUDA the batch is measured: per-process batches tried, doubling, until samples/s stops
# growing by GROWTH, one does not fit, or the ladder ends; the smallest batch within FILLED
# of the best rate wins (a larger one buys almost no speed and fewer optimizer steps).
BATCH_LADDER = (8, 16, 32, 64, 128, 256, 512, 1024)
GROWTH, FILLED = 1.10, 0.90


@dataclass(frozen=True)
class BatchChoice:
    """The per-process training batch and precision chosen for a run, and why."""

    batch_size: int
    bf16: bool
    rule: str  # one line for the user
    # samples/s by "<precision> <batch>", as measured; {} where nothing was measured
    timings: dict[str, float]


def choose_batch(
    device: torch.device,
    precision: str,
    model_config,
    size: tuple[int, int],
    largest: int,
    given: int | None = None,
    rate: Callable[..., float] = training_step_rate,
    *,
    arithmetic: Arithmetic,
) -> BatchChoice:
    """Returns the per-process training batch and the precision to train in.

    Without a ``given`` batch: CPU_BATCH on a CPU; on CUDA the batch ``measure_batch``
    finds on this GPU for this model and sample size, remembered like the arithmetic. With
    one, that batch. On CUDA with "auto" precision and bf16 units, the precision is the
    faster at that batch (bf16 loses to fp32 at small batches on an H200 and wins at large
    ones, docs/speed.md); elsewhere it is the command's ``arithmetic``'s, whose layout the
    batch is measured in.

    Args:
        precision: "auto", "fp32" or "bf16".
        size: (height, width) of a training sample.
        largest: no batch above this is tried (what one process can take).
        given: the batch the user chose, per process.
    """
    measures = device.type == "cuda" and (
        given is None or (precision == "auto" and has_bf16_units(device))
    )
    if not measures:
        batch = given or CPU_BATCH
        why = "--batch-size" if given else "the CPU default"
        return BatchChoice(batch, arithmetic.bf16, f"batch {batch}: {why}", {})
    batches = (given,) if given else tuple(b for b in BATCH_LADDER if b <= largest) or (largest,)
    key = {
        **_key(device),
        "model": asdict(model_config),
        "size": list(size),
        "precision": precision,
        "batches": list(batches),
    }
    return _remembered(
        f"{device.type} batch",
        key,
        BatchChoice,
        lambda: measure_batch(
            device, precision, model_config, size, batches, rate, arithmetic.channels_last
        ),
        lambda choice: (
            None
            if choice.batch_size in batches
            else f"batch {choice.batch_size} is not one of those measured {list(batches)}"
        ),
    )


def measure_batch(
    device: torch.device,
    precision: str,
    model_config,
    size: tuple[int, int],
    batches: tuple[int, ...],
    rate: Callable[..., float] = training_step_rate,
    channels_last: bool = True,
) -> BatchChoice:
    """Times training steps at each of ``batches`` in turn (in each precision that
    ``precision`` allows, in the ``channels_last`` layout or not) until samples/s stops
    growing by GROWTH or a batch does not fit, and returns the smallest batch within FILLED
    of the best rate, in the faster precision at that batch."""
    if precision == "auto":
        options = [False, True] if has_bf16_units(device) else [False]
    else:
        options = [precision == "bf16"]
    log.warning(
        "measuring the batch size and precision that train fastest on this %s (once per "
        "GPU, model and sample size)",
        device.type,
    )
    timings: dict[str, float] = {}
    by_batch: dict[int, dict[bool, float]] = {}
    for batch in batches:
        rates = {}
        for bf16 in options:
            try:
                rates[bf16] = rate(
                    device, bf16, channels_last, batch=batch, model_config=model_config, size=size
                )
            except torch.cuda.OutOfMemoryError:
                continue
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            timings[f"{'bf16' if bf16 else 'fp32'} {batch}"] = rates[bf16]
        if not rates:
            break  # it does not fit; no larger batch will
        previous = max((max(r.values()) for r in by_batch.values()), default=0.0)
        by_batch[batch] = rates
        if previous and max(rates.values()) < GROWTH * previous:
            break  # filled: doubling again gains little
    if not by_batch:
        raise VidpredError(
            f"a training batch of {batches[0]} does not fit in this {device.type}'s memory; "
            "use a smaller --batch-size or --crop"
        )
    best = max(max(r.values()) for r in by_batch.values())
    batch = min(b for b, r in by_batch.items() if max(r.values()) >= FILLED * best)
    bf16 = max(by_batch[batch], key=by_batch[batch].get)
    why = (
        "the faster precision at that batch"
        if len(batches) == 1
        else f"the smallest batch within {FILLED:.0%} of the fastest measured"
    )
    shown = ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
    rule = f"batch {batch} per process in {'bf16' if bf16 else 'fp32'}: {why} (samples/s: {shown})"
    return BatchChoice(batch, bf16, rule, timings)


def _read(path: Path) -> dict:
    """Returns the measurements stored in ``path``; {} where it is missing or unusable (not a
    regular file, too large, not a JSON object: with one warning line)."""
    from .outputs import ignore_state, read_state

    data = read_state(path, TUNING_MAX_BYTES, instead="measuring again")
    if data is None:
        return {}
    try:
        stored = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: [[[[... nested deeper than Python
        stored = None
    if not isinstance(stored, dict):
        ignore_state(path, "not a JSON object", "measuring again")
        return {}
    return stored


def arithmetic_for(
    device: torch.device, precision: str = "auto", layout: str = "auto"
) -> Arithmetic:
    """Returns the arithmetic a command runs the model with on ``device``, resolved once per
    command and passed to the predictor and the trainer.

    Args:
        precision: "fp32" or "bf16" fix the precision (``--precision``); "auto" takes what
            measured faster on this machine.
        layout: "channels-last" or "contiguous" fix the activations' layout, in training and
            inference (``--layout``); "auto" takes what measured faster for each.

    Where anything is "auto", the choice is remembered from an earlier measurement on this
    machine, else measured now, once, saying so (``choose``). Measured layouts: on the AMX
    Xeon channels-last made fp32 training 10% and inference 22% faster; on an AMD EPYC
    without AMX, fp32 training 8-19% slower; on an AVX-512 Xeon without AMX, training within
    noise and inference 25% faster.

    Raises:
        ValueError: an unknown precision or layout.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if layout not in ("auto", *LAYOUTS):
        raise ValueError(f"layout must be one of {('auto', *LAYOUTS)}, got {layout!r}")
    chosen = choose(device) if "auto" in (precision, layout) else None
    bf16 = chosen.bf16 if precision == "auto" else precision == "bf16"
    if layout == "auto":
        training, inference = chosen.channels_last, chosen.channels_last_inference
    else:
        training = inference = layout == "channels-last"
    timings = chosen.timings if chosen else {}
    return Arithmetic(bf16, training, timings, channels_last_inference=inference)

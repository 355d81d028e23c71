"""The trainer: AdamW, warm-up + cosine schedule, gradient clipping, resumable checkpoints.

It knows nothing of the terminal: progress goes to optional callbacks.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .checkpoint import Checkpoint, metrics_log_path, model_from_checkpoint
from .data import DataConfig, WindowDataset
from .distributed import World, all_mean, all_min, barrier, current_world, rank_device
from .errors import (
    CheckpointError,
    OutputError,
    SettingError,
    TrainingError,
    TrainingInterrupted,
)
from .losses import step_loss
from .model import ModelConfig, STResNet
from .optim import WeightAverage, lr_factor
from .outputs import atomic_write_bytes, strict_json
from .precision import (
    autocast,
    resolve_device,
    to_device_float,
)
from .runs import TrainRun, check_resume, starting_model_config, stored_train_config
from .train_config import TrainConfig
from .tuning import Arithmetic, arithmetic_for, choose_batch
from .validation import validate

log = logging.getLogger(__name__)


class _StopRequests:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step, so the trainer can
    write a resumable checkpoint instead of dying mid-step."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _write_history(path: Path, history: list[dict]) -> None:
    """Rewrites the per-epoch JSONL log atomically, so it always matches the checkpoint. A
    metric that is not finite is written as null: strict JSON, which any parser reads."""
    text = "".join(strict_json(row) + "\n" for row in history).encode()
    try:
        atomic_write_bytes(path, lambda f: f.write(text))
    except OSError as e:
        raise OutputError(
            f"{path}: could not write the training log ({e.strerror or e}); the previous one, "
            f"if any, is unchanged"
        ) from e


class Batch(NamedTuple):
    """One process's share of a training batch, on the device (channels-last where the model
    is): inputs float32 [0, 1] (b, 3N, c, c), targets float32 [0, 1] (b, 3U, c, c) (U =
    TrainConfig.unroll, oldest first), and the model's flows float32 (b, 2P, c, c) in pixels
    for the first target (``vidpred.flow.model_flows``), or None for a model without a base
    flow."""

    inputs: torch.Tensor
    targets: torch.Tensor
    flows: torch.Tensor | None


def load_batch(
    data: WindowDataset,
    plan: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    step_in_epoch: int,
    batch_size: int,
    device: torch.device,
    *,
    flow_pairs: int,
    channels_last: bool,
    world: World | None = None,
) -> Batch:
    """Returns this process's share of the epoch ``plan``'s batch ``step_in_epoch`` (of the
    global ``batch_size``), with the model's flows of ``flow_pairs`` pairs (0: none), on
    ``device``, in the ``channels_last`` layout or not."""
    rank, size = (world.rank, world.size) if world else (0, 1)
    inputs, targets = data.train_batch_uint8(
        plan, step_in_epoch, batch_size, rank=rank, world_size=size
    )
    base_flows = None
    if flow_pairs:
        base_flows = data.train_batch_flows(
            plan, step_in_epoch, batch_size, rank=rank, world_size=size, pairs=flow_pairs
        ).to(device)
        if channels_last:
            base_flows = base_flows.contiguous(memory_format=torch.channels_last)
    return Batch(
        to_device_float(inputs, device, channels_last),
        to_device_float(targets, device, channels_last),
        base_flows,
    )


class RunClock:
    """Seconds a run has trained, over all the processes that resumed it.

    Under torchrun the ranks' clocks drift apart; the parts of the schedule that depend on
    time (lr, time limit) then use the ranks' mean, which the trainer exchanges every step
    into ``agreed``, so that they all take the same decisions.
    """

    def __init__(self, before: float, shared: bool):
        self.before = before  # seconds the run trained before this process took it over
        self.start = time.monotonic()
        self.agreed: float | None = before if shared else None

    def local(self) -> float:
        """Returns the seconds by this process's clock."""
        return self.before + time.monotonic() - self.start

    def elapsed(self) -> float:
        """Returns the seconds the schedule goes by: the agreed ones under torchrun."""
        return self.agreed if self.agreed is not None else self.local()


@dataclass
class RunState:
    """All that a run changes as it trains; with the configurations it makes a checkpoint
    (``to_checkpoint``), and a checkpoint rebuilds it (``start``), so an interrupted run
    resumes as if it had never stopped."""

    model: STResNet  # the weights being trained, on the device
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None  # the weights inference gets; None with ema 0
    clock: RunClock
    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)  # the best validation so far
    history: list[dict] = field(default_factory=list)  # one row per epoch, as logged

    @classmethod
    def start(
        cls,
        model_config: ModelConfig,
        config: TrainConfig,
        device: torch.device,
        *,
        channels_last: bool,
        resume: Checkpoint | None = None,
        init: Checkpoint | None = None,
        shared_clock: bool = False,
    ) -> RunState:
        """Returns the state of a new run of ``model_config`` (with ``init``'s weights when
        given) or of the run that the loaded checkpoint ``resume`` continues, on ``device``,
        in the ``channels_last`` layout or not.

        Raises:
            CheckpointError: the stored weights or optimizer state do not fit the model.
        """
        torch.manual_seed(config.seed)  # the initial weights
        source = resume if resume is not None else init
        model = STResNet(model_config) if source is None else model_from_checkpoint(source)
        if resume is not None and resume.train_model is not None:  # model is the average
            model.load_state_dict(resume.train_model)
        model.to(device).train()
        if channels_last:
            model.to(memory_format=torch.channels_last)
        trained_s = float(resume.schedule.get("elapsed_s", 0.0)) if resume else 0.0
        run = cls(
            model=model,
            # fused: one kernel for all parameters; on the 2-core CPU its step took 2.0 ms
            # against 11.0 ms for the default per-parameter loop (benchmarks/optimizer_step.py)
            optimizer=torch.optim.AdamW(
                model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
            ),
            average=WeightAverage(model, config.ema) if config.ema else None,
            clock=RunClock(trained_s, shared_clock),
        )
        if resume is not None:
            run._continue(resume)
        return run

    def _continue(self, resume: Checkpoint) -> None:
        """Takes the counters, the weight average and the optimizer state from ``resume``."""
        self.step, self.epoch = resume.step, resume.epoch
        self.step_in_epoch = resume.step_in_epoch
        self.best = dict(resume.best)
        self.history = list(resume.history)
        if self.average is not None and resume.train_model is not None:
            self.average.model.load_state_dict(resume.model)
            self.average.updates = (
                resume.ema_updates if resume.ema_updates is not None else self.step
            )
        try:
            self.optimizer.load_state_dict(resume.optimizer)
        except (ValueError, KeyError, TypeError) as e:
            where = resume.path or "checkpoint"
            raise CheckpointError(f"{where}: optimizer state does not fit the model ({e})") from e

    @property
    def inference_model(self) -> STResNet:
        """Returns the weights a checkpoint gives inference: the average when there is one."""
        return self.average.model if self.average else self.model

    def to_checkpoint(
        self,
        model_config: ModelConfig,
        data_config: DataConfig,
        config: TrainConfig,
        *,
        total_steps: int | None,
        sources: list[str],
    ) -> Checkpoint:
        """Returns the checkpoint of the run so far."""
        averaged = self.average is not None  # model is the average; the trained weights too
        return Checkpoint(
            model_config=model_config,
            data_config=data_config,
            train_config=asdict(config),
            model=state_of(self.inference_model),
            train_model=state_of(self.model) if averaged else None,
            ema_updates=self.average.updates if averaged else None,
            optimizer=self.optimizer.state_dict(),
            schedule={"elapsed_s": self.clock.elapsed(), "total_steps": total_steps or 0},
            step=self.step,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            best=dict(self.best),
            history=list(self.history),
            sources=list(sources),
        )


def train_step(
    run: RunState, net: torch.nn.Module, batch: Batch, config: TrainConfig, bf16: bool
) -> float:
    """Runs one optimizer step of ``run`` on ``batch`` and returns its loss (this process's).

    The step of ``train`` and of ``vidpred bench``: the forward pass under bf16 autocast if
    ``bf16`` (the loss in float32), backward, gradient clipping at ``config.grad_clip``,
    AdamW at the lr the schedule set, then the weight average. ``net`` is ``run.model`` or
    that model wrapped for training (DDP, torch.compile).
    """
    with autocast(batch.inputs.device, bf16):
        loss = step_loss(config.loss, net, batch.inputs, batch.flows, batch.targets)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    run.optimizer.step()
    if run.average is not None:
        run.average.update(run.model)
    return loss.item()


@dataclass(frozen=True)
class Limits:
    """Where a run stops: at the first of a step count (epochs count as their steps) and a
    time limit."""

    steps_per_epoch: int
    total_steps: int | None
    time_limit_s: float | None

    @classmethod
    def of(cls, config: TrainConfig, steps_per_epoch: int) -> Limits:
        counts = [s for s in (config.steps, config.epochs and config.epochs * steps_per_epoch) if s]
        time_limit_s = config.time_limit * 60 if config.time_limit else None
        return cls(steps_per_epoch, min(counts) if counts else None, time_limit_s)

    def progress(self, step: int, elapsed: float) -> float:
        """Returns how far the run is towards the nearest limit, 1 at it."""
        fractions = []
        if self.total_steps:
            fractions.append(step / self.total_steps)
        if self.time_limit_s:
            fractions.append(elapsed / self.time_limit_s)
        return max(fractions)

    def reached(self, step: int, elapsed: float) -> bool:
        return (self.total_steps is not None and step >= self.total_steps) or (
            self.time_limit_s is not None and elapsed >= self.time_limit_s
        )


class _EpochMeter:
    """The mean training loss and the samples/s of one epoch so far."""

    def __init__(self):
        self.start, self.loss_sum, self.steps, self.samples = time.monotonic(), 0.0, 0, 0

    def add(self, loss: float, samples: int) -> None:
        self.loss_sum += loss
        self.steps += 1
        self.samples += samples

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(1, self.steps)

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(1e-9, time.monotonic() - self.start)


@dataclass
class _Trainer:
    """One process's part in a run: the fixed context of its steps (data, device,
    configurations, where the checkpoint goes) around the RunState they change."""

    data: WindowDataset
    model_config: ModelConfig
    data_config: DataConfig
    config: TrainConfig
    run: RunState
    net: torch.nn.Module  # run.model, wrapped for training (DDP, torch.compile)
    world: World
    device: torch.device
    limits: Limits
    out: Path
    sources: list[str]
    on_step: Callable[[dict[str, float]], None] | None
    on_epoch: Callable[[dict[str, float]], None] | None

    bf16: bool  # the model runs under bf16 autocast
    channels_last: bool  # activations in the channels-last layout

    def __post_init__(self):
        self.release_every = self.data.release_interval(self.config.batch_size)

    def finished(self) -> bool:
        return self.limits.reached(self.run.step, self.run.clock.elapsed())

    def progress(self) -> float:
        return self.limits.progress(self.run.step, self.run.clock.elapsed())

    def train_epoch(self, stop: _StopRequests) -> None:
        """Trains to the end of the epoch or to the first limit; validates and saves at either."""
        run = self.run
        plan = self.data.epoch_plan(self.config.seed, run.epoch)
        meter = _EpochMeter()
        while run.step_in_epoch < self.limits.steps_per_epoch and not self.finished():
            self.step(plan, meter, stop)
        epoch_done = run.step_in_epoch >= self.limits.steps_per_epoch
        if epoch_done or self.finished():
            self.end_epoch(meter)
        if epoch_done:
            run.epoch, run.step_in_epoch = run.epoch + 1, 0

    def step(self, plan, meter: _EpochMeter, stop: _StopRequests) -> None:
        """One step of the schedule: lr, batch, train_step, then the bookkeeping.

        Raises:
            TrainingError: the loss became non-finite (nothing is saved).
            TrainingInterrupted: a stop was requested; the checkpoint was saved first.
        """
        run, config = self.run, self.config
        lr = config.lr * lr_factor(run.step, self.progress(), config)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        batch = load_batch(
            self.data,
            plan,
            run.step_in_epoch,
            config.batch_size,
            self.device,
            flow_pairs=self.model_config.flow_pairs,
            channels_last=self.channels_last,
            world=self.world,
        )
        loss = train_step(run, self.net, batch, config, self.bf16)
        loss, ranks_stop = self._agree(loss, stop)
        if not math.isfinite(loss):
            raise TrainingError(
                f"the loss became {loss} at step {run.step}; {self._kept()}; try a lower --lr"
            )
        run.step, run.step_in_epoch = run.step + 1, run.step_in_epoch + 1
        if run.step % self.release_every == 0:  # a run over a folder larger than memory
            self.data.release_pages()
        meter.add(loss, len(batch.inputs) * self.world.size)
        if self.on_step and self.world.is_main:
            self.on_step(
                {
                    "step": run.step,
                    "epoch": run.epoch,
                    "progress": min(1.0, self.progress()),
                    "loss": loss,
                    "lr": lr,
                    "samples_per_s": meter.samples_per_s,
                }
            )
        # In one process, a signal during the step or on_step counts too.
        if ranks_stop if self.world.size > 1 else stop.signal is not None:
            if self.world.is_main:
                self.checkpoint().save(self.out)
            if self.world.size > 1:
                barrier()  # no rank exits (making torchrun stop the rest) before the save
            raise TrainingInterrupted(self.out, run.step)

    def _agree(self, loss: float, stop: _StopRequests) -> tuple[float, bool]:
        """Returns the step's loss and whether any rank asked to stop: under torchrun the
        ranks' mean loss and their stop requests, in one exchange a step that also agrees
        the clock; in one process its own loss and False."""
        if self.world.size == 1:
            return loss, False
        clock = self.run.clock
        loss, votes, clock.agreed = all_mean(
            [loss, float(stop.signal is not None), clock.local()], self.device
        )
        return loss, votes > 0

    def end_epoch(self, meter: _EpochMeter) -> None:
        """Validates, saves the checkpoint and its log, and reports the epoch (rank 0)."""
        if not self.world.is_main:
            return
        run = self.run
        row = {
            "epoch": run.epoch,
            "step": run.step,
            "elapsed_s": round(run.clock.elapsed(), 2),
            "train_loss": meter.mean_loss,
            "lr": run.optimizer.param_groups[0]["lr"],
            "samples_per_s": meter.samples_per_s,
            **validate(
                run.inference_model, self.data, self.device, self.config.val_max, bf16=self.bf16
            ),
        }
        run.history.append(row)
        if "val_psnr" in row and row["val_psnr"] >= run.best.get("val_psnr", -math.inf):
            run.best.update(
                val_psnr=row["val_psnr"],
                val_psnr_copy_last=row["val_psnr_copy_last"],
                val_psnr_flow=row["val_psnr_flow"],
                step=run.step,
            )
        self.checkpoint().save(self.out)
        _write_history(metrics_log_path(self.out), run.history)
        if self.on_epoch:
            self.on_epoch(row)

    def checkpoint(self) -> Checkpoint:
        """Returns the run's checkpoint.

        Raises:
            TrainingError: the weights are non-finite (a step whose update alone overflowed,
                which the loss check misses): such weights are never saved.
        """
        weights = self.run.model.named_parameters()
        bad = [name for name, p in weights if not torch.isfinite(p).all()]
        if bad:
            raise TrainingError(
                f"the weights became non-finite ({bad[0]}) at step {self.run.step}; "
                f"{self._kept()}; try a lower --lr"
            )
        return self.run.to_checkpoint(
            self.model_config,
            self.data_config,
            self.config,
            total_steps=self.limits.total_steps,
            sources=self.sources,
        )

    def _kept(self) -> str:
        if self.out.exists():
            return f"stopped without saving; the last good checkpoint is {self.out}"
        return "stopped; no checkpoint was written"


def train(
    data: WindowDataset,
    model_config: ModelConfig,
    data_config: DataConfig,
    config: TrainConfig,
    out: str | Path,
    *,
    sources: list[str] | None = None,
    resume: Checkpoint | None = None,
    init: Checkpoint | None = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    compile_model: bool = False,
    arithmetic: Arithmetic | None = None,
) -> Checkpoint:
    """Trains a model and returns the final checkpoint (also written to ``out``).

    Args:
        data: the training/validation windows.
        model_config: the model to build (with ``init``: ignored for the checkpoint's).
        data_config: stored in the checkpoint so inference uses the same working size.
        config: limits, optimiser and loss settings.
        out: checkpoint path, rewritten atomically after every epoch and at the end.
        sources: the video paths trained on, stored for ``--resume``.
        resume: a loaded checkpoint to continue from (model, optimizer, schedule, data order);
            the configurations must keep its settings but the stop limits, device and
            precision (``check_resume``).
        init: a loaded checkpoint whose model (configuration and weights) training starts
            from, with a fresh optimizer and schedule: fine-tuning.
        on_step: called after each step with step, progress, loss, lr, samples_per_s.
        on_epoch: called after each epoch with its validation metrics.
        compile_model: run the training forward/backward through ``torch.compile``
            (checkpoints still hold the plain module's weights).
        arithmetic: the precision and layout to train in (``vidpred.tuning.arithmetic_for``,
            resolved once per command); None: resolved here from ``config.precision``.

    Under torchrun (an initialised process group) each of the W ranks trains on its
    ``batch_size / W`` share of every global batch and gradients are averaged, so the run
    follows the single-process one; only rank 0 validates, writes the checkpoint and the
    log, and calls ``on_step``/``on_epoch``.

    Raises:
        VidpredError, CheckpointError: ``resume`` cannot continue with these settings.
        TrainingInterrupted: SIGINT/SIGTERM arrived; a resumable checkpoint was written first.
        TrainingError: the loss became non-finite; the previous checkpoint is left untouched.
    """
    out = Path(out)
    world = current_world()
    device = rank_device(resolve_device(config.device), world)
    if resume is not None and config.batch_size is None:
        config = replace(config, batch_size=stored_train_config(resume).batch_size)
    if config.batch_size is not None and config.batch_size % world.size:
        raise SettingError(
            lambda n: (
                f"{n('batch_size')} {config.batch_size} is the global batch and must "
                f"divide evenly among the {world.size} processes"
            )
        )
    if resume is not None:
        check_resume(resume, {**asdict(data_config), **asdict(model_config), **asdict(config)})
    if data.unroll != config.unroll:
        raise ValueError(
            f"the training windows hold {data.unroll} targets but unroll is {config.unroll}: "
            f"build the WindowDataset with unroll={config.unroll}"
        )
    model_config = starting_model_config(model_config, init)
    arithmetic = arithmetic or arithmetic_for(device, config.precision)
    config, bf16 = _batch_and_precision(data, model_config, config, device, world, arithmetic)
    run = RunState.start(
        model_config,
        config,
        device,
        channels_last=arithmetic.channels_last,
        resume=resume,
        init=init,
        shared_clock=world.size > 1,
    )
    if model_config.uses_flow:
        data.ensure_flows()
    trainer = _Trainer(
        data=data,
        model_config=model_config,
        data_config=data_config,
        config=config,
        run=run,
        net=wrap_for_training(run.model, device, world, compile_model),
        world=world,
        device=device,
        bf16=bf16,
        channels_last=arithmetic.channels_last,
        limits=Limits.of(config, data.steps_per_epoch(config.batch_size)),
        out=out,
        sources=list(sources or []),
        on_step=on_step,
        on_epoch=on_epoch,
    )
    with _StopRequests() as stop:
        while not trainer.finished():
            trainer.train_epoch(stop)
    final = trainer.checkpoint()
    if world.is_main:
        final.save(out)
    return final


def train_run(
    run: TrainRun,
    *,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    compile_model: bool = False,
    arithmetic: Arithmetic | None = None,
) -> Checkpoint:
    """Trains the planned ``run`` (``vidpred.runs.TrainRun``: new, resumed or fine-tuning)
    on its videos (``run.load_data``) and returns the final checkpoint, also written to
    ``run.out``. The other arguments are ``train``'s.

    Raises:
        VideoError: no usable video; otherwise as ``train``.
    """
    return train(
        run.load_data(cache=cache, cache_dir=cache_dir),
        run.model_config,
        run.data_config,
        run.config,
        run.out,
        sources=[str(s.resolve()) for s in run.sources],
        resume=run.resumes,
        init=run.fine_tunes,
        on_step=on_step,
        on_epoch=on_epoch,
        compile_model=compile_model,
        arithmetic=arithmetic,
    )


def _batch_and_precision(
    data: WindowDataset,
    model_config: ModelConfig,
    config: TrainConfig,
    device: torch.device,
    world: World,
    arithmetic: Arithmetic,
) -> tuple[TrainConfig, bool]:
    """Returns ``config`` with its global batch chosen where it names none, and whether to
    train under bf16 autocast (``vidpred.tuning.choose_batch``; every rank takes the
    smallest batch any rank chose, and fp32 if any chose it). Says what was chosen."""
    given = config.batch_size // world.size if config.batch_size else None
    choice = choose_batch(
        device,
        config.precision,
        model_config,
        data.sample_size(),
        largest=max(1, data.largest_batch() // world.size),
        given=given,
        arithmetic=arithmetic,
    )
    batch, bf16 = choice.batch_size, choice.bf16
    if world.size > 1:
        batch, bf16 = all_min([batch, int(bf16)], device)
    if given is None or choice.timings:
        log.info("training with %s", choice.rule)
    return replace(config, batch_size=batch * world.size), bool(bf16)


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Returns a CPU copy of a model's state dict, for checkpoints."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def wrap_for_training(
    model: torch.nn.Module, device: torch.device, world: World, compile_model: bool
) -> torch.nn.Module:
    """Returns the module the training step calls: ``model`` under DDP and/or torch.compile.

    Checkpoints and validation use ``model`` itself, so saved keys never carry the
    wrappers' ``module.`` / ``_orig_mod.`` prefixes.
    """
    net = model
    if world.size > 1:
        if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
            log.warning(
                "--norm batch under torchrun: batch statistics are per process, so the "
                "run no longer matches a single-process one exactly"
            )
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if compile_model:
        net = torch.compile(net)
    return net

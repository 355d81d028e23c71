"""Planning a training run: a new one, one that resumes a checkpoint or one that fine-tunes
from it (``TrainRun``), with the rules of what each may be: the settings a resumed run keeps
from its checkpoint, and the architecture a run trains. ``vidpred.training.train_run``
trains a plan; `vidpred train` only parses its options into one."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint, load_checkpoint
from .data import DataConfig, WindowDataset, default_crop, load_flows, load_videos
from .errors import CheckpointError, VidpredError
from .model import ModelConfig, weights_for_inputs
from .options import flag, is_option, kept_on_resume
from .train_config import LEGACY_TRAIN_FIELDS, TrainConfig

# How long a run trains when it names none of epochs, steps and time limit.
DEFAULT_EPOCHS = 10


@dataclass
class TrainRun:
    """One training run, planned: its settings, the videos it reads, the checkpoint it
    writes, and the loaded checkpoint it continues (``resumes``) or whose model it
    fine-tunes (``fine_tunes``), if any. Make one with ``new``, ``resume`` or ``init``."""

    model_config: ModelConfig
    data_config: DataConfig
    config: TrainConfig
    sources: list[Path]  # video files and folders
    out: Path  # the checkpoint it writes, with its JSONL log beside it
    resumes: Checkpoint | None = None
    fine_tunes: Checkpoint | None = None
    in_place: bool = False  # a resumed run that rewrites its own checkpoint and log
    _data: WindowDataset | None = field(default=None, repr=False)

    @classmethod
    def new(
        cls,
        sources: list[str | Path],
        out: str | Path,
        model_config: ModelConfig | None = None,
        data_config: DataConfig | None = None,
        config: TrainConfig | None = None,
    ) -> TrainRun:
        """Returns a run from scratch (defaults: the default model and data, DEFAULT_EPOCHS).
        A data configuration with the default crop gets it fitted to its working size, as
        `vidpred train --size` does."""
        data_config = data_config or DataConfig()
        if data_config.crop == DataConfig().crop:
            data_config = replace(data_config, crop=default_crop(data_config.size))
        return cls(
            model_config or ModelConfig(),
            data_config,
            config or TrainConfig(epochs=DEFAULT_EPOCHS),
            _paths(sources),
            Path(out),
        )

    @classmethod
    def init(
        cls,
        checkpoint: str | Path,
        sources: list[str | Path],
        out: str | Path,
        data_config: DataConfig | None = None,
        config: TrainConfig | None = None,
        refit: dict | None = None,
    ) -> TrainRun:
        """Returns a run that fine-tunes the model of ``checkpoint`` (its architecture and
        weights; a fresh optimizer and schedule) on ``sources``. ``refit``, if given, changes
        how the model sees the flow: model options of ``vidpred.model.REFITTABLE`` (the start,
        dis <-> damped, and the pooling of the flow input), its weights fitted to them
        (``weights_for_inputs``).

        Raises:
            CheckpointError: the checkpoint cannot be used.
            VidpredError: ``refit`` asks for a model its weights do not fit.
        """
        init = load_checkpoint(checkpoint)
        target = replace(init.model_config, **(refit or {}))
        if target != init.model_config:
            try:
                model = weights_for_inputs(init.model, init.model_config, target)
            except ValueError as e:
                raise VidpredError(f"--init: {e}") from e
            init = replace(
                init,
                model_config=target,
                model=model,
                train_model=None,
                optimizer=None,
            )
        run = cls.new(sources, out, init.model_config, data_config, config)
        run.fine_tunes = init
        return run

    @classmethod
    def resume(
        cls,
        checkpoint: str | Path,
        overrides: dict[str, Any] | None = None,
        *,
        sources: list[str | Path] | None = None,
        out: str | Path | None = None,
    ) -> TrainRun:
        """Returns the run that continues ``checkpoint`` with its own settings, as `vidpred
        train --resume` does: ``overrides`` (field name -> value) may change only the stop
        limits, device and precision (``resumed_settings``); the videos are the ones it
        stored unless ``sources`` names others; it rewrites ``checkpoint`` unless ``out``
        names another file.

        Raises:
            CheckpointError, VidpredError: as ``resumed_settings``, or it stores no videos
                and ``sources`` names none.
        """
        resume = load_checkpoint(checkpoint)
        stored = [Path(s) for s in resume.sources]
        if not (sources or stored):
            raise VidpredError(
                f"{checkpoint}: no video folder stored; name it: vidpred train FOLDER --resume ..."
            )
        model_config, data_config, config = resumed_settings(resume, overrides)
        out = Path(out or checkpoint)
        return cls(
            model_config,
            data_config,
            config,
            _paths(sources) if sources else stored,
            out,
            resumes=resume,
            in_place=out.resolve() == Path(checkpoint).resolve(),
        )

    def inputs(self) -> list[Path]:
        """Returns the files and folders it reads: never written, even with --force."""
        started_from = [] if self.in_place else [self.resumes, self.fine_tunes]
        return [*self.sources, *(ckpt.path for ckpt in started_from if ckpt is not None)]

    def load_data(
        self, *, cache: bool = True, cache_dir: str | Path | None = None
    ) -> WindowDataset:
        """Returns the windows of its videos (read once, then kept), with the base flows when
        the model starts from them (computed once per video, then read from the decode
        cache unless ``cache`` is off).

        Raises:
            VideoError: no usable video (``vidpred.data.load_videos``).
        """
        if self._data is None:
            size = self.data_config.size
            videos = load_videos(
                self.sources,
                size,
                min_frames=self.model_config.history + 1,
                cache=cache,
                cache_dir=cache_dir,
            )
            flows = None
            if self.model_config.uses_flow:
                flows = load_flows(videos, size, cache=cache, cache_dir=cache_dir)
            self._data = WindowDataset(
                videos,
                self.model_config.input_offsets(),
                self.data_config,
                flows,
                unroll=self.config.unroll,
            )
        return self._data


def _paths(sources: list[str | Path]) -> list[Path]:
    return [Path(s) for s in sources]


def stored_train_config(resume: Checkpoint) -> TrainConfig:
    """Returns the TrainConfig a loaded checkpoint was trained with; fields it predates read
    as what they meant then (LEGACY_TRAIN_FIELDS), so a resumed run keeps its behaviour.

    Raises:
        CheckpointError: it stores none, or one this vidpred cannot read.
    """
    where = resume.path or "checkpoint"
    stored = resume.train_config
    if not isinstance(stored, dict):
        raise CheckpointError(f"{where}: cannot resume: it has no train_config")
    try:
        return TrainConfig(**{**LEGACY_TRAIN_FIELDS, **stored})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: cannot resume: bad train_config ({e})") from e


def check_resume(resume: Checkpoint, settings: dict[str, Any]) -> None:
    """Raises unless a run can continue from the loaded checkpoint ``resume`` with
    ``settings`` (configuration field name -> value; fields not named are not checked):
    where it stopped (it holds the optimizer state), and with each setting that a resumed run
    keeps (``vidpred.options.kept_on_resume``) as it was.

    Raises:
        CheckpointError: the checkpoint holds no usable train_config or no optimizer state
            (saved for inference).
        VidpredError: settings differ from the checkpoint's; the message names each. Ignoring
            them instead would leave the user believing they applied.
    """
    where = resume.path or "checkpoint"
    stored = (resume.data_config, resume.model_config, stored_train_config(resume))
    if not resume.optimizer:
        # Without its optimizer state (a copy saved for inference, like the shipped weights)
        # the run would silently not continue as it would have gone on.
        raise CheckpointError(
            f"{where}: cannot resume: it holds no optimizer state (weights saved for "
            f"inference), so the run cannot continue where it stopped; to train on from "
            f"its weights, fine-tune: vidpred train FOLDER --init "
            f"{shlex.quote(str(where))} --out NEW.pt"
        )
    changed = [
        f"{flag(f) if is_option(f) else f.name} {_shown(settings[f.name])} "
        f"(it has {_shown(getattr(kept, f.name))})"
        for kept in stored
        for f in fields(kept)
        if f.name in settings and kept_on_resume(f) and settings[f.name] != getattr(kept, f.name)
    ]
    if changed:
        raise VidpredError(
            f"{where}: --resume continues that run with its own settings, so it cannot "
            f"change {'; '.join(changed)}. To train on from these weights with new settings, "
            f"start a new run with --init {where}"
        )


def _shown(value: Any) -> str:
    """Returns a setting as the command line writes it: on/off for a switch."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def starting_model_config(model_config: ModelConfig, init: Checkpoint | None) -> ModelConfig:
    """Returns the architecture a new run trains: that of the checkpoint ``init`` it
    fine-tunes from (its weights fit no other), else ``model_config``."""
    return init.model_config if init is not None else model_config


def resumed_settings(
    resume: Checkpoint, overrides: dict[str, Any] | None = None
) -> tuple[ModelConfig, DataConfig, TrainConfig]:
    """Returns the (model, data, training) configurations of a run that continues the
    loaded checkpoint ``resume``: its own, with ``overrides`` (field name -> value) applied,
    which may name only what a resumed run can change (the stop limits, device, precision)
    or repeat a kept setting's value. The rules of `vidpred train --resume`, for Python
    callers of ``vidpred.train``.

    Raises:
        CheckpointError, VidpredError: as ``check_resume``; ValueError: a name that is no
            configuration field.
    """
    overrides = dict(overrides or {})
    stored = (resume.model_config, resume.data_config, stored_train_config(resume))
    known = {f.name for config in stored for f in fields(config)}
    if unknown := sorted(set(overrides) - known):
        raise ValueError(f"not configuration fields: {', '.join(unknown)}")
    check_resume(resume, overrides)
    try:
        return tuple(
            replace(config, **{k: v for k, v in overrides.items() if k in _names(config)})
            for config in stored
        )
    except ValueError as e:  # values that are each valid but not together
        raise VidpredError(str(e)) from e


def _names(config: Any) -> set[str]:
    return {f.name for f in fields(config)}

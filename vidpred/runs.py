"""What a resumed or fine-tuning run is allowed to be: the settings it keeps from its
checkpoint, and the architecture it trains."""

from __future__ import annotations

import shlex
from dataclasses import fields, replace
from typing import Any

from .data import DataConfig
from .errors import CheckpointError, VidpredError
from .model import ModelConfig
from .options import flag, is_option, kept_on_resume
from .train_config import LEGACY_TRAIN_FIELDS, TrainConfig


def stored_train_config(resume: dict[str, Any]) -> TrainConfig:
    """Returns the TrainConfig a loaded checkpoint was trained with; fields it predates read
    as what they meant then (LEGACY_TRAIN_FIELDS), so a resumed run keeps its behaviour.

    Raises:
        CheckpointError: it stores none, or one this vidpred cannot read.
    """
    where = resume.get("path", "checkpoint")
    stored = resume.get("train_config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{where}: cannot resume: it has no train_config")
    try:
        return TrainConfig(**{**LEGACY_TRAIN_FIELDS, **stored})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: cannot resume: bad train_config ({e})") from e


def check_resume(resume: dict[str, Any], settings: dict[str, Any]) -> None:
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
    where = resume.get("path", "checkpoint")
    stored = (resume["data_config"], resume["model_config"], stored_train_config(resume))
    if not resume.get("optimizer"):
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


def starting_model_config(model_config: ModelConfig, init: dict[str, Any] | None) -> ModelConfig:
    """Returns the architecture a new run trains: that of the checkpoint ``init`` it
    fine-tunes from (its weights fit no other), else ``model_config``."""
    return init["model_config"] if init is not None else model_config


def resumed_settings(
    resume: dict[str, Any], overrides: dict[str, Any] | None = None
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
    stored = (resume["model_config"], resume["data_config"], stored_train_config(resume))
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

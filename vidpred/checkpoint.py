"""Self-contained checkpoints: written atomically, loaded as data (never as code).

A checkpoint is a dict of plain types and tensors:
    format, version, model_config, data_config, train_config, model, optimizer, schedule,
    step, epoch, best, history (per-epoch metrics)
so that the file alone rebuilds its model. Loading uses ``torch.load(weights_only=True)``,
which refuses any pickle that would construct arbitrary objects or run code.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from .data import DataConfig
from .errors import CheckpointError, OutputError
from .model import LEGACY_MODEL_FIELDS, ModelConfig, STResNet

FORMAT = "vidpred-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "model_config", "data_config", "model")


def write_temp(path: Path, write) -> Path:
    """Calls ``write(file)`` on a hidden temp file beside ``path`` and fsyncs it; returns the
    temp file, for the caller to rename over ``path``. On any failure the temp file is removed.

    Raises:
        OSError: the write failed; its ``filename`` is ``path``, so the message names the file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and not e.filename:
            # f.write's own errors (a full disk) name no file; the user needs to know which.
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    return tmp


def atomic_write_bytes(path: Path, write) -> None:
    """Calls ``write(file)`` on a temp file beside ``path``, fsyncs it, then renames it over ``path``.

    A crash at any point leaves the previous file intact (or no file), never a partial one.
    """
    path = Path(path)
    tmp = write_temp(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Writes a checkpoint dict atomically (temp file, fsync, rename).

    Raises:
        OutputError: the file could not be written (disk full, folder gone or read-only);
            the previous checkpoint at ``path``, if any, is unchanged.
    """
    payload = {"format": FORMAT, "version": VERSION, **payload}
    try:
        atomic_write_bytes(Path(path), lambda f: torch.save(payload, f))
    except OSError as e:
        raise OutputError(
            f"{path}: could not write the checkpoint ({e.strerror or e}); "
            f"the previous one, if any, is unchanged"
        ) from e


def _config_from_dict(cls, values: Any, path: Path, key: str):
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: '{key}' is not a mapping")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CheckpointError(f"{path}: '{key}' has unknown fields {unknown} (written by a newer vidpred?)")
    if cls is ModelConfig:
        values = {**LEGACY_MODEL_FIELDS, **values}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: '{key}' is invalid: {e}") from e


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Returns the checkpoint dict, with ``model_config`` and ``data_config`` as dataclasses.

    Raises:
        CheckpointError: missing, not a vidpred checkpoint, unsafe (would run code), from a
            newer format version, or with missing or mismatched keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we refuse them anyway
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any global it does not know: a crafted or foreign pickle.
        # (torch's own message suggests allow-listing the global: not advice to pass on.)
        wanted = re.search(r"GLOBAL (\S+)", str(e))
        if wanted:
            raise CheckpointError(
                f"{path}: refused to load: it asks to run code ({wanted.group(1)}); "
                f"vidpred checkpoints are plain data, so this file is not one (it may be malicious)"
            ) from e
        raise CheckpointError(f"{path}: not a vidpred checkpoint (unreadable as plain data)") from e
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror or e})") from e
    except Exception as e:  # zip errors, truncated files, random bytes
        raise CheckpointError(f"{path}: not a vidpred checkpoint ({type(e).__name__})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vidpred checkpoint")
    version = ckpt.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: checkpoint has no valid format version ({version!r})")
    if version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this vidpred "
            f"understands ({VERSION}); upgrade vidpred"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint is missing {', '.join(missing)}")
    ckpt["model_config"] = _config_from_dict(ModelConfig, ckpt["model_config"], path, "model_config")
    ckpt["data_config"] = _config_from_dict(DataConfig, ckpt["data_config"], path, "data_config")
    ckpt["path"] = path
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> STResNet:
    """Returns the model rebuilt from a loaded checkpoint, in eval mode, on the CPU.

    Raises:
        CheckpointError: the stored weights do not fit the stored configuration.
    """
    model = STResNet(ckpt["model_config"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(
            f"{ckpt.get('path', 'checkpoint')}: weights do not match the model configuration "
            f"({first[1].strip() if len(first) > 1 else first[0]})"
        ) from e
    return model.eval()


def save_for_inference(src: str | Path, dst: str | Path) -> None:
    """Copies a checkpoint without its optimizer state (a third of the size): enough to
    render, evaluate and fine-tune from (``--init``), not to ``--resume`` exactly.
    """
    ckpt = load_checkpoint(src)
    training_only = ("optimizer", "train_model", "ema_updates", "path", "format", "version")
    keep = {k: v for k, v in ckpt.items() if k not in training_only}
    keep["model_config"] = ckpt["model_config"].to_dict()
    keep["data_config"] = ckpt["data_config"].to_dict()
    save_checkpoint(dst, keep)

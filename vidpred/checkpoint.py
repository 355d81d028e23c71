"""Self-contained checkpoints: written atomically, loaded as data (never as code).

A checkpoint file holds a dict of plain types and tensors:
    format, version, model_config, data_config, train_config, model, optimizer, schedule,
    step, epoch, best, history (per-epoch metrics)
so that the file alone rebuilds its model; in the code it is a ``Checkpoint``
(``from_payload`` checks a loaded dict, ``to_payload`` writes one). Loading uses
``torch.load(weights_only=True)``, which refuses any pickle that would construct arbitrary
objects or run code. Training keeps
a per-epoch JSONL log beside each checkpoint (``metrics_log_path``).
"""

from __future__ import annotations

import math
import pickle
import re
import reprlib
import warnings
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from .data import DataConfig
from .errors import CheckpointError, OutputError
from .model import ModelConfig, STResNet, legacy_model_values
from .options import COUNT, Bounds, field_bounds
from .outputs import atomic_write_bytes
from .train_config import TrainConfig

FORMAT = "vidpred-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "model_config", "data_config", "model")


def metrics_log_path(checkpoint: str | Path) -> Path:
    """Returns the per-epoch JSONL log that sits beside a checkpoint."""
    return Path(checkpoint).with_suffix(".jsonl")


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


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A checkpoint: the configurations, the weights and the state of the run that wrote it.

    ``model`` holds the weights inference uses: the weight average where the run keeps one,
    whose trained weights are then ``train_model``. ``train_config`` is the stored mapping,
    read with ``vidpred.runs.stored_train_config`` (a checkpoint may predate some of today's
    fields). Weights saved for inference have no ``optimizer``, so they cannot be resumed.
    ``path`` is the file it was loaded from (None: not loaded).
    """

    # In the order a file stores them: a checkpoint written again keeps its order.
    model_config: ModelConfig
    data_config: DataConfig
    train_config: dict[str, Any] | None = None
    model: dict[str, torch.Tensor]
    train_model: dict[str, torch.Tensor] | None = None
    ema_updates: int | None = None  # updates the weight average has had
    optimizer: dict[str, Any] | None = None
    schedule: dict[str, float] = field(default_factory=dict)  # elapsed_s, total_steps
    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)  # the best validation so far
    history: list[dict] = field(default_factory=list)  # one row per epoch, as logged
    sources: list[str] = field(default_factory=list)  # the video paths trained on
    path: Path | None = None

    @classmethod
    def from_payload(cls, payload: Any, path: Path) -> Checkpoint:
        """Returns the checkpoint that a file's loaded contents hold, after checking every
        field (``load_checkpoint``; the archive itself is checked there).

        Raises:
            CheckpointError: as ``load_checkpoint``.
        """
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a vidpred checkpoint")
        version = payload.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"{path}: checkpoint has no valid format version ({version!r})")
        if version > VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version} is newer than this vidpred "
                f"understands ({VERSION}); upgrade vidpred"
            )
        missing = [k for k in REQUIRED_KEYS if k not in payload]
        if missing:
            raise CheckpointError(f"{path}: checkpoint is missing {', '.join(missing)}")
        payload = dict(payload)
        payload["model_config"] = _config_from_dict(
            ModelConfig, payload["model_config"], path, "model_config"
        )
        payload["data_config"] = _config_from_dict(
            DataConfig, payload["data_config"], path, "data_config"
        )
        _check_training_state(payload, path)
        _check_weights(payload, path)
        known = {f.name for f in fields(cls)} - {"path"}
        return cls(**{k: v for k, v in payload.items() if k in known}, path=path)

    def to_payload(self) -> dict[str, Any]:
        """Returns what ``save`` writes: plain data (the configurations as dicts)."""
        payload = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}
        payload["model_config"] = self.model_config.to_dict()
        payload["data_config"] = self.data_config.to_dict()
        # Fields a run without them never wrote stay absent, as they always were.
        for name in ("train_config", "train_model", "ema_updates", "optimizer"):
            if payload[name] is None:
                del payload[name]
        return payload

    def save(self, path: str | Path) -> None:
        """Writes it atomically (``save_checkpoint``)."""
        save_checkpoint(path, self.to_payload())

    def for_inference(self) -> Checkpoint:
        """Returns it without the optimizer state and the trained weights behind the average
        (a third of the size): enough to render, evaluate and fine-tune from, not to resume."""
        return replace(self, optimizer=None, train_model=None, ema_updates=None)


# torch.save stores every record of its zip archive uncompressed, so the records of a real
# checkpoint add up to about the file's own size. A zip tool's deflate shrinks float32
# weights by 10% at most. Records that claim more than twice the file's size (plus 1 MiB for
# a tiny file's overhead) can only be a compression bomb: refused before torch inflates them.
MAX_EXPANSION = 2
EXPANSION_SLACK = 2**20


def stored_bounds(config_class: type) -> dict[str, Bounds]:
    """Returns what each field of a stored configuration may hold: the bounds the field
    declares (vidpred.options), read when a checkpoint is checked. A stored training run
    always names its batch. (The model is also checked against the stored weights' shapes,
    on the meta device, before it is built.)"""
    bounds = field_bounds(config_class)
    if config_class is TrainConfig:
        bounds = {**bounds, "batch_size": replace(bounds["batch_size"], optional=False)}
    return bounds


COUNTER_FIELDS = ("step", "epoch", "step_in_epoch", "ema_updates")


# Shows a stored value in an error message: short, however long or deeply nested it is.
_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother, _repr.maxlong = 2, 40, 40, 40
_shown = _repr.repr


def _check_fields(values: dict, ranges: dict[str, Bounds], path: Path, key: str) -> None:
    """Raises CheckpointError naming the first field of ``values`` outside its range."""
    for name, rule in ranges.items():
        if name in values and not rule.accepts(values[name]):
            raise CheckpointError(
                f"{path}: {key}.{name} must be {rule.describe()}"
                f"{' or None' if rule.optional else ''}, got {_shown(values[name])}"
            )


def _config_from_dict(cls, values: Any, path: Path, key: str):
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: '{key}' is not a mapping")
    if cls is ModelConfig:
        if "batch_norm" in values and not isinstance(values["batch_norm"], bool):
            raise CheckpointError(f"{path}: {key}.batch_norm must be true or false")
        values = legacy_model_values(values)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known, key=str)
    if unknown:
        raise CheckpointError(
            f"{path}: '{key}' has unknown fields {_shown(unknown)} (written by a newer vidpred?)"
        )
    _check_fields(values, stored_bounds(cls), path, key)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: '{key}' is invalid: {e}") from e


def _check_archive(path: Path) -> None:
    """Refuses, from the zip's central directory alone, a file that is not a zip archive or
    whose records would inflate far beyond its size (torch.load allocates what they claim).

    Raises:
        CheckpointError: not a zip archive, unreadable, or a compression bomb.
    """
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            claimed = sum(info.file_size for info in archive.infolist())
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror or e})") from e
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        # torch.save has written zip archives since torch 1.6; anything else is not ours.
        raise CheckpointError(f"{path}: not a vidpred checkpoint (not a zip archive)") from e
    if claimed > MAX_EXPANSION * size + EXPANSION_SLACK:
        raise CheckpointError(
            f"{path}: refused to load: its records would inflate to {_bytes(claimed)} from a "
            f"{_bytes(size)} file (a compression bomb?); vidpred checkpoints are stored "
            f"uncompressed, so at most {MAX_EXPANSION}x the file size is accepted"
        )


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_training_state(ckpt: dict, path: Path) -> None:
    """Raises CheckpointError naming the first top-level field outside what vidpred writes:
    the training configuration, the counters, the schedule, best, history and sources."""
    stored = ckpt.get("train_config")
    if stored is not None:
        if not isinstance(stored, dict):
            raise CheckpointError(f"{path}: 'train_config' is not a mapping")
        # Unknown fields are left to --resume, which names them (inference never reads them).
        _check_fields(stored, stored_bounds(TrainConfig), path, "train_config")
    counter = Bounds(0, COUNT, kind="int")
    _check_fields(ckpt, {name: counter for name in COUNTER_FIELDS}, path, "checkpoint")
    schedule = ckpt.get("schedule", {})
    if not isinstance(schedule, dict):
        raise CheckpointError(f"{path}: 'schedule' is not a mapping")
    _check_fields(
        schedule, {"elapsed_s": Bounds(0, kind="real"), "total_steps": counter}, path, "schedule"
    )
    best = ckpt.get("best", {})
    if not isinstance(best, dict) or not all(
        isinstance(k, str) and _plain_number(v) and math.isfinite(v) for k, v in best.items()
    ):
        raise CheckpointError(
            f"{path}: 'best' must map names to finite numbers, got {_shown(best)}"
        )
    history = ckpt.get("history", [])
    scalar = str | int | float | bool | type(None)
    if not isinstance(history, list) or not all(
        isinstance(row, dict)
        and all(isinstance(k, str) and isinstance(v, scalar) for k, v in row.items())
        for row in history
    ):
        raise CheckpointError(
            f"{path}: 'history' must be a list of rows of plain numbers, got {_shown(history)}"
        )
    sources = ckpt.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
        raise CheckpointError(f"{path}: 'sources' must be a list of paths, got {_shown(sources)}")


def _dense(tensor: torch.Tensor) -> bool:
    """Whether each element of ``tensor`` has its own place in memory and none is left over
    (any order of dimensions): what torch.save writes for a parameter or its moments."""
    dims = sorted((st, n) for st, n in zip(tensor.stride(), tensor.shape, strict=True) if n != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def _check_stored_data(tensors: list[torch.Tensor], path: Path, key: str) -> None:
    """Raises CheckpointError if tensors claim more elements than the file stores for them:
    a zero-stride view or one storage shared by many tensors would let a tiny file configure
    a huge model, which building it then allocates."""
    storages: dict[int, int] = {}
    needed = 0
    for tensor in tensors:
        if not _dense(tensor):
            raise CheckpointError(
                f"{path}: '{key}' holds tensors whose elements overlap (crafted?)"
            )
        needed += tensor.numel() * tensor.element_size()
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    if sum(storages.values()) < needed:
        raise CheckpointError(
            f"{path}: '{key}' holds tensors that share their data (crafted?): "
            f"{_bytes(needed)} of weights from {_bytes(sum(storages.values()))} stored"
        )


def _check_finite(
    tensors: dict[Any, torch.Tensor], path: Path, key: str, what: str = "weights"
) -> None:
    """Raises CheckpointError naming the first of ``tensors`` (a model's parameters and
    buffers) that holds NaN or infinity: such a model predicts NaN frames, whose metrics are
    not numbers, and a render of them is noise."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                # In full: the names are the model's own (the keys were checked), not the file's.
                f"{path}: '{key}' holds non-finite {what} (NaN or infinity) in {name!r} "
                "(did the training that wrote it diverge?)"
            )


def _check_weights(ckpt: dict, path: Path) -> None:
    """Raises CheckpointError unless the stored weights (and the optimizer state, if any)
    have exactly the keys and shapes of the configured model.

    The model is built on the meta device (shapes only, no memory), so a configuration that
    claims a huge model is refused before anything that size is allocated.
    """
    with torch.device("meta"):
        meta = STResNet(ckpt["model_config"])
    expected = meta.state_dict()
    for key in ("model", "train_model"):
        if key not in ckpt:
            continue
        state = ckpt[key]
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            raise CheckpointError(f"{path}: '{key}' is not a mapping of names to tensors")
        _check_stored_data(list(state.values()), path, key)
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            if missing:
                detail = "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing)
            elif unexpected:
                detail = "Unexpected key(s) in state_dict: " + ", ".join(
                    f'"{k}"' for k in unexpected
                )
            else:
                k = wrong[0]
                detail = (
                    f"size mismatch for {k}: the checkpoint has shape {tuple(state[k].shape)}, "
                    f"the model {tuple(expected[k].shape)}"
                )
            raise CheckpointError(
                f"{path}: weights do not match the model configuration ({detail})"
            )
        _check_finite(state, path, key)
    optimizer = ckpt.get("optimizer")
    if optimizer is None:
        return
    state = optimizer.get("state") if isinstance(optimizer, dict) else None
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    if not isinstance(state, dict) or not isinstance(groups, list):
        raise CheckpointError(f"{path}: 'optimizer' is not an optimizer state")
    # AdamW's per-parameter state is indexed by the parameters' order in the model; its
    # moments must have their parameter's shape, or the first step fails mid-training.
    shapes = [p.shape for p in meta.parameters()]
    moments = [
        v
        for values in state.values()
        if isinstance(values, dict)
        for v in values.values()
        if isinstance(v, torch.Tensor)
    ]
    _check_stored_data(moments, path, "optimizer")
    # A NaN moment would turn every weight NaN on the first step of --resume.
    _check_finite(dict(enumerate(moments)), path, "optimizer", "moments")
    for index, values in state.items():
        if not (isinstance(index, int) and 0 <= index < len(shapes) and isinstance(values, dict)):
            raise CheckpointError(f"{path}: optimizer state does not fit the model")
        for name, value in values.items():
            if name != "step" and (
                not isinstance(value, torch.Tensor) or value.shape != shapes[index]
            ):
                raise CheckpointError(f"{path}: optimizer state does not fit the model ({name})")
    for group in groups:
        if not isinstance(group, dict):
            raise CheckpointError(f"{path}: optimizer state does not fit the model")
        for name, value in group.items():
            ok = (
                all(_plain_number(v) and math.isfinite(v) for v in value)
                if isinstance(value, list | tuple)
                else value is None
                or isinstance(value, bool)
                or (_plain_number(value) and math.isfinite(value))
            )
            if not ok:
                raise CheckpointError(
                    f"{path}: optimizer setting {_shown(name)} must be a finite number, "
                    f"got {_shown(value)}"
                )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Returns the checkpoint at ``path``, checked (``Checkpoint``).

    Every field is checked before it is used: the zip's directory before torch inflates
    anything (a compression bomb is refused), then each configuration and training-state
    field's type and range, then the stored tensors' shapes against the configured model and
    their values (NaN or infinity in a weight is refused).

    Raises:
        CheckpointError: missing, not a vidpred checkpoint, unsafe (would run code or inflate
            far beyond its size), from a newer format version, with missing or mismatched
            keys, with a field outside its range (the message names the field), or with
            weights that are not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    _check_archive(path)
    try:
        with (
            warnings.catch_warnings()
        ):  # torch warns about foreign pickle protocols; we refuse them anyway
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
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
    return Checkpoint.from_payload(payload, path)


def model_from_checkpoint(ckpt: Checkpoint) -> STResNet:
    """Returns the model rebuilt from a checkpoint (its inference weights), in eval mode, on
    the CPU.

    Raises:
        CheckpointError: the stored weights do not fit the stored configuration.
    """
    model = STResNet(ckpt.model_config)
    try:
        model.load_state_dict(ckpt.model)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(
            f"{ckpt.path or 'checkpoint'}: weights do not match the model configuration "
            f"({first[1].strip() if len(first) > 1 else first[0]})"
        ) from e
    return model.eval()


def save_for_inference(src: str | Path, dst: str | Path) -> None:
    """Copies a checkpoint without its optimizer state (a third of the size): enough to
    render, evaluate and fine-tune from (``--init``), not to ``--resume`` exactly.
    """
    load_checkpoint(src).for_inference().save(dst)

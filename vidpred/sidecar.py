"""A render's companions: the JSON sidecar (what was rendered, with which weights, how well
it did) and the GIF, written to temp files that replace their targets with the mp4.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import metrics_log_path
from .errors import OutputError
from .outputs import ignore_state, read_regular, read_state, strict_json, write_temp

SIDECAR_FORMAT = "vidpred-render"
SIDECAR_VERSION = 1


def sidecar_path(render_path: str | Path) -> Path:
    """Returns the JSON sidecar of a render: clip.pred.mp4 -> clip.pred.json."""
    return Path(render_path).with_suffix(".json")


def gif_path(render_path: str | Path) -> Path:
    """Returns the GIF written beside a render with ``gif=True``: clip.pred.gif."""
    return Path(render_path).with_suffix(".gif")


# A training log holds about 150 bytes per epoch: 16 MiB is a hundred thousand epochs. A bigger
# one is not ours, and its rows would go into every render's sidecar.
TRAINING_LOG_MAX_BYTES = 16 << 20
# A sidecar is its training log plus a few KB of metrics and settings.
SIDECAR_EXTRA_BYTES = 1 << 20


def read_training_log(weights: str | Path | None) -> list[dict[str, Any]]:
    """Returns the per-epoch rows of the JSONL log beside a checkpoint ([] if there is none;
    also, with one warning line, if it is not a regular file or is too large)."""
    if weights is None:
        return []
    path = metrics_log_path(weights)
    data = read_state(path, TRAINING_LOG_MAX_BYTES, instead="the render records no training log")
    if data is None:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    if data.strip() and not rows:
        ignore_state(path, "not a training log", "the render records no training log")
    return rows


def finite_or_none(summary: dict[str, float]) -> dict[str, float] | None:
    return summary if all(math.isfinite(v) for v in summary.values()) else None


def sidecar_bytes(meta: dict[str, Any]) -> bytes:
    """Returns a render's metadata as the JSON text of its sidecar."""
    meta = {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, **meta}
    return strict_json(meta, indent=1).encode()


def sidecar_temp(path: Path, meta: dict[str, Any]) -> Path:
    """Writes a render's sidecar to a temp file beside ``path``; returns the temp file."""
    text = sidecar_bytes(meta)
    return temp_or_error(path, lambda f: f.write(text))


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    """Returns a render's sidecar metadata, or None if the file is missing or not a sidecar
    (not a regular file included: a FIFO would block the read)."""
    try:
        meta = json.loads(read_regular(path, TRAINING_LOG_MAX_BYTES + SIDECAR_EXTRA_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        return None
    return meta


def gif_temp(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Writes uint8 RGB (H, W, 3) frames as a looping GIF to a temp file beside ``path``;
    returns the temp file."""
    import imageio.v3 as iio

    # GIF delays are whole centiseconds; players round what they cannot show.
    return temp_or_error(
        path,
        lambda f: iio.imwrite(f, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0),
    )  # the one copy check_render_size counts


def temp_or_error(path: Path, write) -> Path:
    """Returns ``write_temp(path, write)``'s temp file.

    Raises:
        OutputError: it could not be written; the message names ``path`` and the reason.
    """
    try:
        return write_temp(path, write)
    except OSError as e:
        raise OutputError(f"{path}: could not write it ({e.strerror or e})") from e

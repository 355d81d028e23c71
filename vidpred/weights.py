"""Which weights to use when the user names none.

Order: the newest checkpoint written by ``vidpred train`` (remembered in a small state file),
else the default weights shipped in the repo's ``weights/`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import CheckpointError
from .outputs import atomic_write_bytes, ignore_state, read_state
from .paths import DEFAULT_WEIGHTS, state_dir

# latest.json holds one path (at most 4096 bytes on Linux, more when escaped): 64 KiB is ample.
LATEST_MAX_BYTES = 64 << 10


def _latest_file() -> Path:
    return state_dir() / "latest.json"


def record_latest(checkpoint: str | Path) -> None:
    """Remembers ``checkpoint`` as the newest one written by ``vidpred train``."""
    try:
        text = json.dumps({"path": str(Path(checkpoint).resolve())}).encode()
        state_dir().mkdir(parents=True, exist_ok=True)
        # No fsync: losing this file to a power cut only forgets which checkpoint was newest.
        atomic_write_bytes(_latest_file(), lambda f: f.write(text), fsync=False)
    except OSError:
        pass  # remembering is a convenience; never fail a training run over it


def latest_trained() -> Path | None:
    """Returns the newest checkpoint written by ``vidpred train``, if it still exists. A state
    file that is not one vidpred wrote (a FIFO, a link to a device, not JSON) is ignored with
    one warning line."""
    file = _latest_file()
    instead = "the newest trained checkpoint is not known"
    data = read_state(file, LATEST_MAX_BYTES, instead=instead)
    if data is None:
        return None
    try:
        path = json.loads(data)["path"]
    except (ValueError, RecursionError, KeyError, TypeError):
        path = None
    if not isinstance(path, str) or not path or "\0" in path:
        ignore_state(file, "not a path to a checkpoint", instead)
        return None
    return Path(path) if Path(path).is_file() else None


def resolve_weights(explicit: str | Path | None) -> tuple[Path, str]:
    """Returns (weights path, why it was chosen) for an optional user choice.

    Raises:
        CheckpointError: nothing was named and no trained or default weights exist.
    """
    if explicit is not None:
        return Path(explicit), "given with --weights"
    latest = latest_trained()
    if latest is not None:
        return latest, "newest checkpoint written by `vidpred train`"
    if DEFAULT_WEIGHTS.is_file():
        return DEFAULT_WEIGHTS, "shipped default weights"
    raise CheckpointError(
        "no weights: train a model with `vidpred train FOLDER` or pass --weights PATH"
    )

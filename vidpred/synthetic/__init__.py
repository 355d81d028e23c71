"""Procedural videos with known motion, for tests, demos and training.

Every generator returns ``uint8 RGB (T, H, W, 3)`` and depends only on its arguments: the
same seed gives the same clip, bit for bit, on the same machine. All randomness comes from
one ``np.random.default_rng(seed)`` per clip, drawn in a fixed order, and a longer clip
continues a shorter one with the same seed (its first frames are identical).

The generators live in ``simple`` (shapes, digits, pan_zoom, pendulum) and ``natural``;
``draw`` holds the drawing helpers they share. This module names them for the CLI
(``GENERATORS``) and writes clips to disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .draw import MIN_SIDE, camera_view
from .natural import _frame_cadence as _frame_cadence  # the tests import it from here
from .natural import natural_motion
from .simple import bouncing_shapes, moving_digits, pan_zoom_texture, pendulum

__all__ = [
    "GENERATORS",
    "MIN_SIDE",
    "bouncing_shapes",
    "camera_view",
    "generate",
    "moving_digits",
    "natural_motion",
    "pan_zoom_texture",
    "pendulum",
    "write_clips",
]


Generator = Callable[[int, int, int, int], np.ndarray]

GENERATORS: dict[str, Generator] = {
    "shapes": bouncing_shapes,
    "digits": moving_digits,
    "pan_zoom": pan_zoom_texture,
    "pendulum": pendulum,
    "natural": natural_motion,
}


def generate(name: str, num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Returns the clip of generator ``name``, uint8 RGB (T, H, W, 3).

    Raises:
        ValueError: ``name`` is not in ``GENERATORS``, or the size is too small.
    """
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown synthetic video {name!r}; choose from {', '.join(GENERATORS)}"
        ) from None
    return generator(num_frames, height, width, seed)


def write_clips(
    folder: str | Path,
    name: str,
    count: int,
    num_frames: int,
    height: int,
    width: int,
    seed: int = 0,
    fps: float = 25.0,
    force: bool = False,
) -> list[Path]:
    """Writes ``count`` clips of generator ``name`` as H.264 mp4s (seeds seed .. seed+count-1);
    returns their paths. H.264 on purpose: real footage carries compression artefacts too.

    Raises:
        OutputError: a clip exists already and ``force`` is not set.
    """
    from ..encoding import write_mp4
    from ..outputs import check_output_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}_{seed + i:05d}.mp4" for i in range(count)]
    for path in paths:
        check_output_path(path, force=force)
    for i, path in enumerate(paths):
        write_mp4(path, generate(name, num_frames, height, width, seed + i), fps)
    return paths

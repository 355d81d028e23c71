"""Procedural videos with known motion, for tests, demos and training."""

from .natural import (
    GENERATORS,
    MIN_SIDE,
    bouncing_shapes,
    camera_view,
    generate,
    moving_digits,
    natural_motion,
    pan_zoom_texture,
    pendulum,
    write_clips,
)
from .natural import _frame_cadence as _frame_cadence  # the tests import it from here

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

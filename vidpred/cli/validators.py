"""argparse types: each reads one option's text and says, in one line, what it allows."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, allowed: str) -> int | float:
    """Returns ``text`` read as ``kind`` (int or float); otherwise raises argparse's type
    error saying what the option allows (argparse's own message names the parsing function,
    "invalid frame_size value: 'nan'", which tells the user nothing)."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "0 or more")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def tail_fraction(text: str) -> float:
    value = _number(text, float, "in (0, 1]")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


# Frame rates the reader takes from a file as they are (vidpred.video._measured_fps); outside
# them it falls back to 30 fps, so a generated clip would not play back at its --fps.
MIN_FPS, MAX_FPS = 0.5, 1000.0


# generate: at most this many clips per call; sides from the generators' smallest
# (vidpred.synthetic.MIN_SIDE) to the reader's largest working frame (4096x4096,
# vidpred.video.MAX_FRAME_PIXELS).
MAX_CLIPS, MIN_SIDE, MAX_SIDE = 100_000, 16, 4096


def clip_fps(text: str) -> float:
    value = _number(text, float, f"{MIN_FPS:g} to {MAX_FPS:g} frames per second")
    if not MIN_FPS <= value <= MAX_FPS:
        raise argparse.ArgumentTypeError(
            f"must be {MIN_FPS:g} to {MAX_FPS:g} frames per second, got {text}"
        )
    return value


def clip_side(text: str) -> int:
    value = _number(text, int, f"an even number of pixels from {MIN_SIDE} to {MAX_SIDE} (H.264)")
    if not MIN_SIDE <= value <= MAX_SIDE or value % 2:
        raise argparse.ArgumentTypeError(
            f"must be an even number of pixels from {MIN_SIDE} to {MAX_SIDE} (H.264), got {text}"
        )
    return value


def clip_count(text: str) -> int:
    value = _number(text, int, f"1 to {MAX_CLIPS}")
    if not 1 <= value <= MAX_CLIPS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_CLIPS}, got {text}")
    return value


def clock_time(text: str) -> float:
    """Returns seconds from "SECONDS", "MM:SS" or "HH:MM:SS" (each part may have decimals
    in its last field, as ffmpeg's -ss takes them)."""
    allowed = "seconds, MM:SS or HH:MM:SS"
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in values) or any(v >= 60 for v in values[1:]):
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return seconds


def duration_time(text: str) -> float:
    value = clock_time(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 s, got {text!r}")
    return value


def crf_value(text: str) -> int:
    from ..encoding import MAX_CRF

    allowed = f"an integer from 0 to {MAX_CRF}"
    value = _number(text, int, allowed)
    if not 0 <= value <= MAX_CRF:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
    return value


def port_number(text: str) -> int:
    value = _number(text, int, "0 to 65535 (0 picks a free port)")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535 (0 picks a free port), got {text}")
    return value

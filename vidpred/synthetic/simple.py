"""The simple generators: bouncing shapes, moving digits, a pan over a texture, a pendulum.

Each shows one kind of motion, so a predictor's errors on it are easy to read.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .draw import (
    _ONE,
    SHIFT,
    _bounce,
    _camera_maps,
    _check_args,
    _colours,
    _composite,
    _fixed,
    _gradient,
    _point,
    _premultiply,
    _rotation,
    _texture,
    _texture_side,
    _to_uint8,
    camera_view,
)


def bouncing_shapes(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Returns a clip of coloured shapes bouncing off the walls, uint8 RGB (T, H, W, 3).

    Four to seven filled circles, rectangles and triangles of different sizes move at
    constant velocities (1-3 px per frame at 128 px height, scaled with the frame),
    polygons spinning slowly, over a static gradient. Later shapes occlude earlier ones.
    """
    _check_args(num_frames, height, width)
    rng = np.random.default_rng(seed)
    size = min(height, width)
    n = int(rng.integers(4, 8))
    background = _to_uint8(_gradient(rng, height, width, (0.1, 0.35), (0.55, 0.9)))
    colours = _colours(rng, n, (0.6, 1.0), (0.5, 1.0))
    kinds = rng.choice(["circle", "rectangle", "triangle"], n)
    radius = size * rng.uniform(0.07, 0.2, n)  # circumradius: what must stay inside the walls
    speed = rng.uniform(1.0, 3.0, n) * size / 128
    heading = rng.uniform(0, 2 * math.pi, n)
    low = np.stack([radius, radius], axis=-1)  # (n, 2)
    high = np.stack([width - 1 - radius, height - 1 - radius], axis=-1)
    start = rng.uniform(low, np.maximum(high, low))
    velocity = np.stack([speed * np.cos(heading), speed * np.sin(heading)], axis=-1)
    spin = rng.uniform(-0.04, 0.04, n) * (rng.random(n) < 0.7)
    angle0 = rng.uniform(0, 2 * math.pi, n)
    # Unit outlines, scaled by each radius: rectangles get a random aspect, triangles are
    # irregular so their rotation is visible.
    outlines = []
    for i in range(n):
        if kinds[i] == "rectangle":
            a = math.atan(rng.uniform(0.4, 1.0))
            corners = [a, math.pi - a, math.pi + a, 2 * math.pi - a]
            outlines.append(np.array([[math.cos(c), math.sin(c)] for c in corners]))
        elif kinds[i] == "triangle":
            c = np.arange(3) * 2 * math.pi / 3 + rng.uniform(-0.3, 0.3, 3)
            outlines.append(np.stack([np.cos(c), np.sin(c)], axis=-1))
        else:
            outlines.append(None)

    t = np.arange(num_frames, dtype=np.float64)
    xs = _bounce(start[:, 0], velocity[:, 0], low[:, 0], high[:, 0], t)  # (T, n)
    ys = _bounce(start[:, 1], velocity[:, 1], low[:, 1], high[:, 1], t)  # (T, n)
    angles = angle0 + np.outer(t, spin)  # (T, n)

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for f in range(num_frames):
        frame = frames[f]
        frame[:] = background
        for i in range(n):
            colour = tuple(float(c) for c in colours[i])
            centre = np.array([xs[f, i], ys[f, i]])
            if outlines[i] is None:
                cv2.circle(
                    frame,
                    _point(centre),
                    int(round(radius[i] * _ONE)),
                    colour,
                    -1,
                    cv2.LINE_AA,
                    SHIFT,
                )
            else:
                pts = centre + radius[i] * outlines[i] @ _rotation(angles[f, i]).T
                cv2.fillConvexPoly(frame, _fixed(pts), colour, cv2.LINE_AA, SHIFT)
    return frames


def _text_sprite(text: str, colour: np.ndarray, glyph_height: float, font: int) -> np.ndarray:
    """Returns ``text`` rendered as a premultiplied RGBA sprite float32 (h, w, 4).

    Drawn 4x larger and shrunk with area averaging: ``putText`` has no sub-pixel ``shift``,
    and the supersampling gives clean anti-aliased edges at small sizes.
    """
    ss = 4
    (w1, h1), _ = cv2.getTextSize(text, font, 1.0, 1)
    scale = glyph_height * ss / h1
    thickness = max(1, int(round(glyph_height * ss / 6)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    pad = thickness + 2 * ss
    big_h = -(-(th + base + 2 * pad) // ss) * ss  # round up to a multiple of ss
    big_w = -(-(tw + 2 * pad) // ss) * ss
    mask = np.zeros((big_h, big_w), np.uint8)
    cv2.putText(mask, text, (pad, pad + th), font, scale, 255, thickness, cv2.LINE_AA)
    mask = cv2.resize(mask, (big_w // ss, big_h // ss), interpolation=cv2.INTER_AREA)
    rows, cols = np.nonzero(mask)
    mask = mask[max(rows.min() - 1, 0) : rows.max() + 2, max(cols.min() - 1, 0) : cols.max() + 2]
    alpha = mask.astype(np.float32) / 255.0
    rgb = np.broadcast_to(colour.astype(np.float32), (*alpha.shape, 3))
    return _premultiply(rgb, alpha)


def moving_digits(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Returns a clip of 2-3 large digits bouncing on a dark background, uint8 RGB (T, H, W, 3).

    Each digit has its own bright colour and a constant velocity (1-3 px per frame at
    128 px height); they pass over each other, the later one in front.
    """
    _check_args(num_frames, height, width)
    rng = np.random.default_rng(seed)
    size = min(height, width)
    n = int(rng.integers(2, 4))
    background = _gradient(rng, height, width, (0.2, 0.6), (0.05, 0.2))
    colours = _colours(rng, n, (0.5, 0.9), (0.85, 1.0))
    # Pure blues are dark even at full value: lift every colour toward white until it
    # stands out from the dark background (Rec. 601 luma at least 140).
    luma = colours @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (n,)
    lift = np.clip((140 - luma) / (255 - luma), 0, 1)[:, None]
    colours = colours + (255 - colours) * lift
    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX]))
    digits = rng.choice(10, n, replace=False)  # distinct, so a model cannot swap two alike
    sprites = [
        _text_sprite(str(digits[i]), colours[i], size * rng.uniform(0.35, 0.5), font)
        for i in range(n)
    ]
    extent = np.array(
        [[s.shape[1], s.shape[0]] for s in sprites], dtype=np.float64
    )  # (n, 2) as (w, h)
    high = np.maximum(np.array([width, height]) - extent, 0)
    start = rng.uniform(0, 1, (n, 2)) * high
    speed = rng.uniform(1.0, 3.0, n) * size / 128
    heading = rng.uniform(0, 2 * math.pi, n)
    velocity = np.stack([speed * np.cos(heading), speed * np.sin(heading)], axis=-1)
    t = np.arange(num_frames, dtype=np.float64)
    xs = _bounce(start[:, 0], velocity[:, 0], np.zeros(n), high[:, 0], t)  # (T, n) top-left x
    ys = _bounce(start[:, 1], velocity[:, 1], np.zeros(n), high[:, 1], t)  # (T, n) top-left y

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for f in range(num_frames):
        canvas = background.copy()
        for i in range(n):
            # Inverse map: output pixel (x, y) samples sprite pixel (x - left, y - top).
            inverse_map = np.array([[1.0, 0.0, -xs[f, i]], [0.0, 1.0, -ys[f, i]]])
            _composite(canvas, sprites[i], inverse_map)
        frames[f] = _to_uint8(canvas)
    return frames


def pan_zoom_texture(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Returns a camera gliding over a large procedural texture, uint8 RGB (T, H, W, 3).

    The camera pans at 1.5-2.5 output px per frame (at 128 px height, scaled with the
    frame) along a gently curving path while it slowly zooms in and out (about +-15 %) and
    rolls a few degrees. The texture tiles, so the pan never runs off its edge; it is four
    times the frame's longer side, so a 240-frame clip shows no repeat.
    """
    _check_args(num_frames, height, width)
    rng = np.random.default_rng(seed)
    size = min(height, width)
    side = _texture_side(height, width)
    # Primitives are sized by the frame, not the texture, and about 5 fall in each
    # frame-sized patch, whatever the resolution.
    texture = _texture(
        rng, side, side, primitives=round(5 * side**2 / size**2), feature=size
    )  # float32 RGB (S, S, 3)
    t = np.arange(num_frames, dtype=np.float64)
    # Zoom stays above ~0.85 scene px per output px: magnifying the texture more would blur
    # it, and real footage stays sharp when a camera zooms in.
    zoom = math.exp(rng.uniform(0.05, 0.2)) * np.exp(
        rng.uniform(0.12, 0.2)
        * np.sin(2 * math.pi * t / rng.uniform(150, 300) + rng.uniform(0, 2 * math.pi))
    )
    angle = rng.uniform(0.04, 0.1) * np.sin(
        2 * math.pi * t / rng.uniform(200, 400) + rng.uniform(0, 2 * math.pi)
    )
    heading = rng.uniform(0, 2 * math.pi) + rng.uniform(0.3, 0.8) * np.sin(
        2 * math.pi * t / rng.uniform(200, 400)
    )
    # In scene px per frame, so that on screen it stays 1.5-2.5 px whatever the zoom.
    speed = rng.uniform(1.5, 2.5) * size / 128 * zoom
    step = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)  # (T, 2)
    centre = rng.uniform(0, side, 2) + np.concatenate([[[0.0, 0.0]], np.cumsum(step[:-1], axis=0)])
    maps = _camera_maps(centre, zoom, angle, height, width)  # (T, 2, 3)

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for f in range(num_frames):
        frames[f] = _to_uint8(camera_view(texture, maps[f], height, width))
    return frames


def pendulum(
    num_frames: int, height: int, width: int, seed: int, period_frames: int = 24
) -> np.ndarray:
    """Returns a clip of a swinging pendulum and a turning spoked wheel, uint8 RGB (T, H, W, 3).

    Both repeat exactly every ``period_frames`` frames: the pendulum swings once per
    period and the wheel, whose spokes all look alike, turns by one spoke spacing. Frame
    ``t + period_frames`` equals frame ``t`` bit for bit, because the scene is computed from
    ``t mod period_frames``. The swing is sized for a bob speed of about 3-5 px per frame
    at the bottom of the swing, whatever the period.
    """
    _check_args(num_frames, height, width)
    if period_frames < 2:
        raise ValueError(f"period_frames must be at least 2, got {period_frames}")
    rng = np.random.default_rng(seed)
    size = min(height, width)
    background = _to_uint8(_gradient(rng, height, width, (0.05, 0.3), (0.6, 0.95)))
    rod_colour, bob_colour, wheel_colour, spoke_colour = (
        tuple(float(v) for v in c) for c in _colours(rng, 4, (0.5, 0.9), (0.25, 0.8))
    )
    # Layout, wheel on the right: the pendulum hangs in the middle of the space left of it
    # and its swing is capped so the bob clears both the wheel and the frame's edge.
    rim = min(size * rng.uniform(0.25, 0.3), width * 0.22)
    hub = np.array([width * 0.96 - rim, height * rng.uniform(0.5, 0.6)])
    pivot = np.array([(hub[0] - rim) / 2, height * 0.1])
    length = height * rng.uniform(0.5, 0.65)
    bob = size * rng.uniform(0.07, 0.1)
    reach = max(pivot[0] - bob - 2, 1.0)
    amplitude = rng.uniform(3.0, 5.0) * period_frames / (2 * math.pi * length)
    amplitude = float(np.clip(amplitude, 0.1, min(0.7, math.asin(min(reach / length, 1.0)))))
    phase = rng.uniform(0, 2 * math.pi)
    if rng.random() < 0.5:  # or mirrored, wheel on the left
        hub[0], pivot[0] = width - 1 - hub[0], width - 1 - pivot[0]
    spokes = int(rng.integers(3, 7))
    turn = 2 * math.pi / spokes * rng.choice([-1, 1])  # per period: one spoke spacing
    angle0 = rng.uniform(0, 2 * math.pi)
    thick = max(1, int(round(size / 40)))

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    cache: dict[int, np.ndarray] = {}
    for f in range(num_frames):
        k = f % period_frames
        if k not in cache:
            frame = background.copy()
            u = k / period_frames
            spin = angle0 + turn * u + np.arange(spokes) * 2 * math.pi / spokes
            ends = hub + rim * 0.92 * np.stack([np.cos(spin), np.sin(spin)], axis=-1)
            cv2.circle(
                frame, _point(hub), int(rim * _ONE), wheel_colour, 2 * thick, cv2.LINE_AA, SHIFT
            )
            for end in ends:
                cv2.line(
                    frame, _point(hub), _point(end), spoke_colour, 2 * thick, cv2.LINE_AA, SHIFT
                )
                cv2.circle(
                    frame, _point(end), int(rim * 0.1 * _ONE), spoke_colour, -1, cv2.LINE_AA, SHIFT
                )
            cv2.circle(
                frame, _point(hub), int(rim * 0.15 * _ONE), wheel_colour, -1, cv2.LINE_AA, SHIFT
            )
            theta = amplitude * math.cos(2 * math.pi * u + phase)  # 0 = hanging straight down
            tip = pivot + length * np.array([math.sin(theta), math.cos(theta)])
            cv2.line(frame, _point(pivot), _point(tip), rod_colour, thick, cv2.LINE_AA, SHIFT)
            cv2.circle(
                frame, _point(pivot), int(thick * 2 * _ONE), rod_colour, -1, cv2.LINE_AA, SHIFT
            )
            cv2.circle(frame, _point(tip), int(bob * _ONE), bob_colour, -1, cv2.LINE_AA, SHIFT)
            cache[k] = frame
        frames[f] = cache[k]
    return frames

"""Procedural videos with known motion, for tests, demos and training.

Every generator returns ``uint8 RGB (T, H, W, 3)`` and depends only on its arguments: the
same seed gives the same clip, bit for bit, on the same machine. All randomness comes from
one ``np.random.default_rng(seed)`` per clip, drawn in a fixed order, and a longer clip
continues a shorter one with the same seed (its first frames are identical).

Motion is sub-pixel and drawing is anti-aliased everywhere (OpenCV ``LINE_AA`` with
fixed-point ``shift``, or bilinear ``warpAffine`` of pre-rendered sprites), because integer
jumps would teach a predictor that motion comes in whole pixels.

Coordinates are (x, y) in pixels, x to the right and y down, pixel centres at integers, as
OpenCV has them. A 2x3 "inverse map" matrix takes an output pixel to the source pixel it
samples (``cv2.WARP_INVERSE_MAP``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "GENERATORS",
    "bouncing_shapes",
    "generate",
    "moving_digits",
    "natural_motion",
    "pan_zoom_texture",
    "pendulum",
]

# Below this, shapes sized as fractions of the frame shrink to a pixel or two and nothing
# meaningful moves.
MIN_SIDE = 16

# cv2 drawing takes fixed-point coordinates with this many fractional bits: 1/16 px steps.
SHIFT = 4
_ONE = 1 << SHIFT

# Texture spectrum is cut off above this frequency (cycles per pixel): detail finer than
# ~4 px aliases when the camera zooms out and would flicker instead of moving.
TEXTURE_CUTOFF = 0.25


# --------------------------------------------------------------------------- helpers


def _check_args(num_frames: int, height: int, width: int) -> None:
    """Raises ValueError for a clip too short or too small to hold the scene."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ValueError(f"frames must be at least {MIN_SIDE}x{MIN_SIDE}, got {height}x{width}")


def _fixed(points: np.ndarray) -> np.ndarray:
    """Returns float pixel coordinates (..., 2) as cv2 fixed-point int32 (``shift=SHIFT``)."""
    return np.round(np.asarray(points) * _ONE).astype(np.int32)


def _point(xy: np.ndarray) -> tuple[int, int]:
    """Returns a float (x, y) point as the fixed-point int tuple cv2 wants for centres."""
    x, y = _fixed(xy)
    return int(x), int(y)


def _rotation(angle: float) -> np.ndarray:
    """Returns the 2x2 matrix that rotates (x, y) by ``angle`` radians (clockwise on screen)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Returns a draw spread evenly in log scale, so slow and fast speeds are equally likely."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _colours(
    rng: np.random.Generator,
    n: int,
    saturation: tuple[float, float],
    value: tuple[float, float],
) -> np.ndarray:
    """Returns ``n`` RGB colours as float32 (n, 3) in [0, 255], hues spread around the wheel.

    Hues are evenly spaced from a random start (plus jitter) so that colours in one scene
    stay distinguishable from each other.
    """
    hue = (rng.uniform(0, 360) + np.arange(n) * 360 / n + rng.uniform(-15, 15, n)) % 360
    hsv = np.stack([hue, rng.uniform(*saturation, n), rng.uniform(*value, n)], axis=-1)
    rgb = cv2.cvtColor(hsv[None].astype(np.float32), cv2.COLOR_HSV2RGB)[0]  # (n, 3) in [0, 1]
    return rgb * 255.0


def _bounce(
    start: np.ndarray, velocity: np.ndarray, low: np.ndarray, high: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Returns positions (T, N) of N points moving at constant velocity between walls.

    The path is folded into [low, high] (a triangle wave), which is exactly an elastic
    bounce and needs no per-frame simulation.
    """
    span = np.maximum(high - low, 1e-6)
    x = np.mod(start - low + np.outer(t, velocity), 2 * span)  # (T, N)
    return low + np.where(x > span, 2 * span - x, x)


def _gradient(
    rng: np.random.Generator,
    height: int,
    width: int,
    saturation: tuple[float, float],
    value: tuple[float, float],
) -> np.ndarray:
    """Returns a smooth two-colour gradient with a soft vignette, float32 RGB (H, W, 3) [0, 255]."""
    c0, c1 = _colours(rng, 2, saturation, value)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx = xx / max(width - 1, 1) - 0.5
    yy = yy / max(height - 1, 1) - 0.5
    angle = rng.uniform(0, 2 * math.pi)
    d = np.clip(0.5 + math.cos(angle) * xx + math.sin(angle) * yy, 0, 1)[..., None]
    vignette = 1.0 - 0.35 * (xx**2 + yy**2)[..., None]
    return ((c0 * (1 - d) + c1 * d) * vignette).astype(np.float32)


def _fractal_noise(
    rng: np.random.Generator, height: int, width: int, exponent: float, channels: int = 1
) -> np.ndarray:
    """Returns zero-mean, unit-std noise fields float32 (C, H, W) with a 1/f**exponent spectrum.

    Made by filtering white noise in the Fourier domain, so each field tiles seamlessly
    (a camera can pan over it forever with ``BORDER_WRAP``). Natural images have an
    amplitude spectrum close to 1/f; larger exponents give smoother fields.
    """
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = np.inf  # no DC: the mean is set by the caller
    amplitude = f**-exponent * np.exp(-((f / TEXTURE_CUTOFF) ** 2))
    shape = (channels, height, width // 2 + 1)
    spectrum = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * amplitude
    fields = np.fft.irfft2(spectrum, s=(height, width))  # (C, H, W)
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-12
    return fields.astype(np.float32)


def _ellipse_points(centre: np.ndarray, axes: np.ndarray, angle: float, n: int = 48) -> np.ndarray:
    """Returns ``n`` points float (n, 2) around an ellipse, to draw it at sub-pixel precision."""
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    pts = np.stack([axes[0] * np.cos(a), axes[1] * np.sin(a)], axis=-1)
    return centre + pts @ _rotation(angle).T


def _draw_primitives(
    rng: np.random.Generator,
    image: np.ndarray,
    count: int,
    feature: float,
    palette: np.ndarray,
    wrap: bool,
) -> None:
    """Draws ``count`` random ellipses, polygons, rectangles and lines onto uint8 RGB ``image``.

    They give a texture the hard edges that noise alone lacks (real scenes are full of
    them). Their radii run from 6 % to 50 % of ``feature`` px. With ``wrap`` each is also
    drawn at the 8 neighbouring tile offsets, so the texture still tiles.
    """
    h, w = image.shape[:2]
    offsets = [(dx, dy) for dx in (-w, 0, w) for dy in (-h, 0, h)] if wrap else [(0, 0)]
    for _ in range(count):
        kind = rng.choice(["ellipse", "polygon", "rectangle", "line"], p=[0.35, 0.2, 0.25, 0.2])
        centre = rng.uniform(0, 1, 2) * (w, h)
        radius = feature * _log_uniform(rng, 0.06, 0.5)
        # Mostly palette colours, lightened or darkened, so primitives belong to the scene.
        colour = palette[rng.integers(len(palette))] * rng.uniform(0.4, 1.5)
        colour = tuple(float(c) for c in np.clip(colour, 0, 255))
        if kind == "ellipse":
            pts = _ellipse_points(
                centre, radius * rng.uniform(0.3, 1.0, 2), rng.uniform(0, math.pi)
            )
        elif kind == "polygon":
            k = int(rng.integers(3, 7))
            a = np.sort(rng.uniform(0, 2 * math.pi, k))
            r = radius * rng.uniform(0.5, 1.0, k)
            pts = centre + np.stack([r * np.cos(a), r * np.sin(a)], axis=-1)
        elif kind == "rectangle":
            half = radius * rng.uniform(0.3, 1.0, 2)
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
            angle = (
                0.0 if rng.random() < 0.5 else rng.uniform(0, math.pi)
            )  # many edges are axis-aligned
            pts = centre + corners @ _rotation(angle).T
        else:
            direction = rng.uniform(0, 2 * math.pi)
            half = (
                radius
                * rng.uniform(1.5, 4.0)
                * np.array([math.cos(direction), math.sin(direction)])
            )
            pts = np.stack([centre - half, centre + half])
        thickness = int(rng.integers(1, 4))
        for dx, dy in offsets:
            fixed = _fixed(pts + (dx, dy))
            if kind == "line":
                cv2.polylines(image, [fixed], False, colour, thickness, cv2.LINE_AA, SHIFT)
            else:
                cv2.fillPoly(image, [fixed], colour, cv2.LINE_AA, SHIFT)


def _texture(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    saturation: tuple[float, float] = (0.15, 0.6),
    primitives: int,
    feature: float,
    wrap: bool = True,
) -> np.ndarray:
    """Returns a coloured procedural texture, float32 RGB (H, W, 3) in [0, 255].

    Smooth noise blends a three-colour palette (large regions of colour), random
    primitives (``primitives`` of them, sized by ``feature`` px, see ``_draw_primitives``)
    add edges, and 1/f noise modulates brightness (fine detail, also over the
    primitives so they are textured too). With ``wrap`` it tiles seamlessly.
    """
    palette = _colours(rng, 3, saturation, (0.35, 0.85))  # (3, 3)
    mix = 1.0 / (1.0 + np.exp(-2.0 * _fractal_noise(rng, height, width, 2.5, channels=2)))
    base = palette[0] * (1 - mix[0, ..., None]) + palette[1] * mix[0, ..., None]
    third = 0.7 * mix[1, ..., None] ** 2  # the third colour only in patches
    base = base * (1 - third) + palette[2] * third
    image = np.clip(base, 0, 255).astype(np.uint8)
    _draw_primitives(rng, image, primitives, feature, palette, wrap)
    detail = _fractal_noise(rng, height, width, rng.uniform(0.85, 1.2))[0]
    contrast = rng.uniform(0.15, 0.3)
    return np.clip(image * (1 + contrast * detail[..., None]), 0, 255).astype(np.float32)


def _texture_side(height: int, width: int) -> int:
    """Returns the side of a square tiling texture for a camera to roam over.

    Four times the frame's longer side: a pan at the generators' speeds takes 200+ frames
    to cross it, and the primitives, which are drawn per frame-sized patch, stay few
    enough to draw quickly.
    """
    return max(256, 4 * max(height, width))


def _composite(canvas: np.ndarray, sprite: np.ndarray, inverse_map: np.ndarray) -> None:
    """Blends a premultiplied sprite onto ``canvas`` in place, sampled through ``inverse_map``.

    Args:
        canvas: float32 RGB (H, W, 3) in [0, 255].
        sprite: float32 premultiplied RGBA (h, w, 4); RGB in [0, 255], alpha in [0, 1].
        inverse_map: 2x3 matrix taking an output pixel (x, y) to sprite coordinates.

    Premultiplied colour matters: bilinear sampling of plain RGBA would mix in the black of
    transparent pixels and leave a dark fringe. Only the sprite's bounding box on the
    canvas is warped, so cost follows sprite size, not frame size.
    """
    h, w = canvas.shape[:2]
    sh, sw = sprite.shape[:2]
    forward = cv2.invertAffineTransform(inverse_map)
    corners = np.array([[0, 0, 1], [sw, 0, 1], [0, sh, 1], [sw, sh, 1]], dtype=np.float64)
    xy = corners @ forward.T  # (4, 2) on the canvas
    x0, y0 = np.maximum(np.floor(xy.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(xy.max(axis=0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    roi_map = inverse_map.astype(np.float64).copy()
    roi_map[:, 2] += roi_map[:, :2] @ (x0, y0)  # ROI pixel (0, 0) is canvas (x0, y0)
    warped = cv2.warpAffine(
        sprite,
        roi_map,
        (int(x1 - x0), int(y1 - y0)),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )  # (y1-y0, x1-x0, 4)
    roi = canvas[y0:y1, x0:x1]
    roi *= 1.0 - warped[..., 3:]
    roi += warped[..., :3]


def _premultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Returns premultiplied RGBA float32 (h, w, 4) from RGB (h, w, 3) and alpha (h, w).

    RGB is in [0, 255] and alpha in [0, 1], in and out.
    """
    alpha = alpha.astype(np.float32)
    return np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1).astype(np.float32)


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    """Returns float frames rounded and clipped to uint8."""
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- generators


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


def camera_view(scene: np.ndarray, inverse_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Returns the (height, width) view of a tiling scene (H', W', C) through one inverse
    camera map (2, 3) from ``_camera_maps``: bilinear, wrapping around the scene's edges."""
    return cv2.warpAffine(
        scene,
        inverse_map,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_WRAP,
    )


def _camera_maps(
    centre: np.ndarray, zoom: np.ndarray, angle: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Returns inverse maps (T, 2, 3) from output pixels to scene coordinates for each frame.

    The output centre looks at ``centre`` (T, 2); ``zoom`` (T,) is scene pixels per output
    pixel (above 1 shows more of the scene) and ``angle`` (T,) the camera roll in radians.
    """
    c, s = np.cos(angle) * zoom, np.sin(angle) * zoom
    linear = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], axis=1)  # (T, 2, 2)
    mid = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = centre - linear @ mid  # (T, 2)
    return np.concatenate([linear, offset[..., None]], axis=-1)


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


# --------------------------------------------------------------------------- natural motion


@dataclass
class _Actor:
    """A foreground sprite's current life: where it entered the world and how it moves."""

    sprite: np.ndarray  # float32 premultiplied RGBA (h, w, 4)
    parallax: float  # 1 moves with the background; larger is nearer the camera
    speed: float  # own speed, output px per unit of motion time
    heading: float  # radians
    spin: float  # radians per unit of motion time
    scale: float  # sprite px -> scene px
    pulse: float  # relative scale oscillation amplitude (a little non-rigid motion)
    pulse_period: float
    angle0: float = 0.0
    world: np.ndarray | None = None  # (2,) scene position at ``born``, None while off stage
    velocity: np.ndarray | None = None  # (2,) scene px per unit of motion time
    born: float = 0.0  # motion time of entry
    wait_until: float = 0.0  # motion time before which it stays off stage
    last_distance: float | None = None  # from the frame centre, to tell leaving from entering


def _motion_rate(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """Returns how fast the scene's clock runs in each frame, float (T,) >= 0.

    Everything that moves is a function of motion time (the cumulative sum of this), so a
    zero stretch freezes the whole scene (a tripod shot of a still scene) and a stretch
    of 2 doubles every speed; sensor noise and lighting keep going on the real clock.

    How many stretches it draws depends on the clip's length, so ``rng`` must be a
    generator of its own: sharing one would make every later draw, and so the whole
    clip, depend on ``num_frames``.
    """
    # Cameras and objects have inertia: ramp between stretches over about 6 frames.
    kernel = np.hanning(9)[1:-1]
    margin = len(kernel)  # drawn past the end, so the ramp there does not depend on T
    rate = np.empty(num_frames + margin)
    allow_static = rng.random() < 0.35
    f, value = 0, 1.0
    while f < len(rate):
        length = int(rng.integers(20, 121))
        # Never two still stretches in a row, so no clip stands still for over 120 frames.
        if allow_static and value > 0 and rng.random() < 0.3:
            value = 0.0
        else:
            value = _log_uniform(rng, 0.4, 2.0)
        rate[f : f + length] = value
        f += length
    padded = np.pad(rate, len(kernel) // 2, mode="edge")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")[:num_frames]


def _frame_cadence(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """Returns which scene frame each output frame shows, int (T,), non-decreasing.

    Real footage often repeats frames: a 15 fps source shown at 30 fps holds every frame
    twice, 24 fps telecine holds them 2 and 3 times in turn, a 25 fps conversion repeats one
    frame in 25 (bigbuckbunny does), webcams drop and repeat frames at random. The scene then
    stands still for a frame and jumps further on the next; a model that only ever saw steady
    motion extrapolates through the repeats and loses to copy-last there. About two clips in
    three keep the plain 1:1 cadence.

    As in ``_motion_rate``, ``rng`` must be a generator of its own, and the cadence of the
    first frames does not depend on ``num_frames``.
    """
    kinds = ("plain", "hold2", "telecine", "one_in_n", "random")
    kind = kinds[rng.choice(len(kinds), p=[0.65, 0.1, 0.08, 0.09, 0.08])]
    if kind == "plain":
        return np.arange(num_frames)
    if kind == "random":
        repeat_p = rng.uniform(0.05, 0.25)  # drawn first: the draws below depend on T
        holds = 1 + (rng.random(num_frames) < repeat_p)  # each scene frame shown once or twice
    else:
        pattern = {"hold2": [2], "telecine": [2, 3]}.get(kind) or [1] * int(rng.integers(3, 25)) + [2]
        holds = np.resize(pattern, num_frames)
    # Sample i is the scene at frame start[i], shown holds[i] times: the scene runs on while
    # a frame is held, so the next change jumps by the held frames' worth of motion.
    start = np.cumsum(holds) - holds
    return np.repeat(start, holds)[:num_frames]


def _blob_alpha(rng: np.random.Generator, radius: float, softness: float) -> np.ndarray:
    """Returns an irregular soft-edged mask float32 (h, w) in [0, 1] of roughly ``radius``.

    Half are smooth blobs (a circle whose radius wobbles with angle), half irregular
    polygons (straighter edges and corners); all are blurred by ``softness`` pixels.
    """
    half = int(math.ceil(radius * 1.35 + 2 * softness + 2))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    if rng.random() < 0.5:
        angle = np.arctan2(yy, xx)
        edge = np.ones_like(angle)
        for k in range(2, 6):
            edge += rng.uniform(0, 0.25 / k * 2) * np.cos(k * angle + rng.uniform(0, 2 * math.pi))
        alpha = np.clip(radius * edge - np.hypot(xx, yy) + 0.5, 0, 1)
    else:
        k = int(rng.integers(4, 9))
        a = np.sort(rng.uniform(0, 2 * math.pi, k))
        r = radius * rng.uniform(0.6, 1.25, k)
        pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=-1) + half
        mask = np.zeros(xx.shape, np.uint8)
        cv2.fillPoly(mask, [_fixed(pts)], 255, cv2.LINE_AA, SHIFT)
        alpha = mask.astype(np.float32) / 255.0
    if softness > 0.3:
        alpha = cv2.GaussianBlur(alpha, (0, 0), softness)
    return alpha


def _make_sprite(rng: np.random.Generator, radius: float) -> np.ndarray:
    """Returns a textured soft-shaped foreground object, float32 premultiplied RGBA (h, w, 4)."""
    alpha = _blob_alpha(rng, radius, _log_uniform(rng, 0.4, 2.5))
    h, w = alpha.shape
    rgb = _texture(
        rng,
        h,
        w,
        saturation=(0.3, 0.9),
        primitives=int(rng.integers(0, 6)),
        feature=0.3 * min(h, w),
        wrap=False,
    )
    return _premultiply(rgb, alpha)


def _entry_point(
    target: np.ndarray, direction: np.ndarray, reach: float, height: int, width: int
) -> np.ndarray:
    """Returns where an object heading along ``direction`` to ``target`` is just off screen.

    Walks back from ``target`` along ``-direction`` to the first point where a disc of
    radius ``reach`` lies wholly outside the frame.
    """
    lo = np.array([-reach - 1, -reach - 1])
    hi = np.array([width + reach + 1, height + reach + 1])
    with np.errstate(divide="ignore"):
        # Distance back along the ray to each wall of the enlarged frame.
        dist = np.where(
            direction > 0,
            (target - lo) / direction,
            np.where(direction < 0, (hi - target) / -direction, np.inf),
        )
    return target - direction * float(dist.min())


def natural_motion(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Returns a clip that moves the way camera footage does, uint8 RGB (T, H, W, 3).

    The scene: a tiling textured background and two to five textured foreground objects
    with soft, irregular outlines, each at its own depth (parallax) and with its own
    velocity, spin and a slight breathing of scale; nearer objects occlude farther ones.
    Objects leave the frame and others enter from the edges later. A camera pans along a
    slowly turning heading, zooms, rolls a little and sometimes shakes as if hand-held.

    Each seed draws its own speeds, log-uniformly from slow (0.3 px per frame) to fast
    (4-5 px per frame), and motion speeds up, slows down and, in about a third of clips,
    stops for stretches. A third of clips repeat frames the way converted footage does
    (``_frame_cadence``). Over all of it, lighting drifts slowly (brightness, contrast and
    per-channel gain) and Gaussian sensor noise (sigma 0.8-2 levels) is added to every frame,
    repeated ones included.
    """
    _check_args(num_frames, height, width)
    rng = np.random.default_rng(seed)
    size = min(height, width)
    scale = size / 128  # speeds below are quoted for a 128 px frame
    t = np.arange(num_frames, dtype=np.float64)
    rate = _motion_rate(np.random.default_rng(rng.integers(2**63)), num_frames)  # (T,)
    tau = np.concatenate([[0.0], np.cumsum(rate[:-1])])  # (T,) motion time

    # Camera, as functions of motion time.
    side = _texture_side(height, width)
    density = rng.uniform(1.0, 6.0)  # primitives per frame-sized patch: plain to busy
    background = _texture(
        rng, side, side, primitives=round(density * side**2 / size**2), feature=size
    )
    cam_speed = _log_uniform(rng, 0.3, 4.0) * scale * (rng.random() < 0.85)
    zoom_amp = rng.uniform(0.05, 0.2) if rng.random() < 0.6 else 0.0
    # Never much below 1 scene px per output px, which would blur the texture (see pan_zoom).
    zoom = math.exp(rng.uniform(0.0, 0.25)) * np.exp(
        zoom_amp * np.sin(2 * math.pi * tau / rng.uniform(100, 400) + rng.uniform(0, 2 * math.pi))
    )
    roll_amp = rng.uniform(0.01, 0.08) if rng.random() < 0.5 else 0.0
    roll = roll_amp * np.sin(
        2 * math.pi * tau / rng.uniform(150, 500) + rng.uniform(0, 2 * math.pi)
    )
    heading = rng.uniform(0, 2 * math.pi) + rng.normal(0, 0.004) * tau
    direction = np.stack([np.cos(heading), np.sin(heading)], axis=-1)  # (T, 2)
    cam_velocity = (cam_speed * zoom)[:, None] * direction  # scene px per unit motion time
    centre = rng.uniform(0, side, 2) + np.concatenate(
        [[[0.0, 0.0]], np.cumsum(cam_velocity[:-1] * rate[:-1, None], axis=0)]
    )
    if rng.random() < 0.4:
        # Hand-held shake: a few incommensurate wobbles, in output px.
        shake = np.zeros((num_frames, 2))
        amp = rng.uniform(0.3, 1.5) * scale
        for _ in range(3):
            period = rng.uniform(8, 40)
            shake += (
                amp
                / math.sqrt(3)
                * np.sin(2 * math.pi * tau[:, None] / period + rng.uniform(0, 2 * math.pi, 2))
            )
        centre += shake * zoom[:, None]
    maps = _camera_maps(centre, zoom, roll, height, width)  # (T, 2, 3) output -> scene

    # Foreground objects. A pool of sprites is rendered up front; an object that leaves
    # comes back later as the next sprite in the pool, with fresh motion.
    n = int(rng.integers(2, 6))
    pool = [_make_sprite(rng, size * _log_uniform(rng, 0.08, 0.3)) for _ in range(n + 3)]
    next_sprite = n
    mid = np.array([(width - 1) / 2, (height - 1) / 2])

    def new_actor(sprite: np.ndarray) -> _Actor:
        moving = rng.random() < 0.75  # the rest stand still and move only by parallax
        return _Actor(
            sprite=sprite,
            parallax=rng.uniform(1.0, 1.8),
            speed=_log_uniform(rng, 0.3, 5.0) * scale * moving,
            heading=rng.uniform(0, 2 * math.pi),
            spin=rng.normal(0, 0.01) * (rng.random() < 0.5),
            scale=rng.uniform(0.85, 1.15),
            pulse=rng.uniform(0, 0.06),
            pulse_period=rng.uniform(30, 120),
            angle0=rng.uniform(0, 2 * math.pi),
        )

    def screen_velocity(actor: _Actor, f: int) -> np.ndarray:
        """Output px per unit motion time: own motion minus the camera's, scaled by depth."""
        own = actor.speed * np.array([math.cos(actor.heading), math.sin(actor.heading)])
        camera = _rotation(-roll[f]) @ cam_velocity[f] / zoom[f]
        return own - actor.parallax * camera

    def place(actor: _Actor, f: int, screen: np.ndarray) -> None:
        """Puts the actor at output position ``screen`` (x, y) in frame ``f``."""
        # Scene position p = w + (1 - parallax) * C: near objects slide faster than the
        # background as the camera moves. Screen = inverse camera map applied to p.
        p = maps[f][:, :2] @ screen + maps[f][:, 2]
        actor.world = p - (1 - actor.parallax) * centre[f]
        # Own speed is quoted on screen at entry; in the scene it is ``zoom`` times larger
        # and rolled, and fixed from then on, so later zooms change it on screen too.
        own = actor.speed * np.array([math.cos(actor.heading), math.sin(actor.heading)])
        actor.velocity = zoom[f] * (_rotation(roll[f]) @ own)
        actor.born = tau[f]
        actor.last_distance = None

    actors = [new_actor(pool[i]) for i in range(n)]
    for actor in actors:
        if rng.random() < 0.7:
            place(actor, 0, rng.uniform(0, 1, 2) * (width, height))
        else:
            actor.wait_until = rng.uniform(0, 120)  # enters later, in motion time

    # Lighting drift on the real clock: slow sinusoids, a fraction of a level per frame.
    def drift(amplitude: float, shape: tuple[int, ...] = ()) -> np.ndarray:
        period = rng.uniform(150, 600, shape)
        return amplitude * np.sin(
            2 * math.pi * t[:, None] / period + rng.uniform(0, 2 * math.pi, shape)
        )

    brightness = drift(rng.uniform(0, 12), (1,))  # (T, 1) levels
    contrast = 1 + drift(rng.uniform(0, 0.12), (1,))  # (T, 1)
    gain = 1 + drift(rng.uniform(0, 0.08), (3,))  # (T, 3) per channel: colour cast drift
    noise_sigma = rng.uniform(0.8, 2.0)

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    cadence = _frame_cadence(np.random.default_rng([seed, 1]), num_frames)  # (T,)
    scene: tuple[int, np.ndarray] | None = None  # (scene frame, canvas before lighting and noise)
    for f in range(num_frames):
        sf = int(cadence[f])  # the scene frame output frame f shows
        if scene is not None and scene[0] == sf:  # a repeated frame: same scene, fresh noise
            canvas = scene[1].copy()
        else:
            canvas = camera_view(background, maps[sf], height, width)  # float32 RGB (H, W, 3)
            for i in sorted(range(n), key=lambda i: actors[i].parallax):  # far to near
                actor = actors[i]
                if actor.world is None:
                    if tau[sf] < actor.wait_until:
                        continue
                    # Enter from the edge its on-screen motion comes from.
                    actor = actors[i] = new_actor(pool[next_sprite % len(pool)])
                    next_sprite += 1
                    velocity = screen_velocity(actor, sf)
                    norm = float(np.hypot(*velocity))
                    if norm < 0.1 * scale:
                        actor.wait_until = tau[sf] + 20  # nothing would carry it in; try later
                        continue
                    reach = (
                        actor.scale
                        * (1 + actor.pulse)
                        * math.hypot(*actor.sprite.shape[:2])
                        / 2
                        / zoom[sf]
                    )
                    target = rng.uniform(0.2, 0.8, 2) * (width, height)
                    place(actor, sf, _entry_point(target, velocity / norm, reach, height, width))
                age = tau[sf] - actor.born
                p = actor.world + actor.velocity * age + (1 - actor.parallax) * centre[sf]  # scene
                s = actor.scale * (1 + actor.pulse * math.sin(2 * math.pi * age / actor.pulse_period))
                angle = actor.angle0 + actor.spin * age
                # Output pixel -> scene (camera map) -> sprite pixel (undo position, angle, scale).
                to_sprite = _rotation(-angle) / s
                half = (np.array(actor.sprite.shape[1::-1]) - 1) / 2
                linear = to_sprite @ maps[sf][:, :2]
                offset = to_sprite @ (maps[sf][:, 2] - p) + half
                _composite(canvas, actor.sprite, np.concatenate([linear, offset[:, None]], axis=1))
                # Off stage once it is wholly outside the frame and still going away.
                screen = np.linalg.solve(maps[sf][:, :2], p - maps[sf][:, 2])
                reach = s * math.hypot(*actor.sprite.shape[:2]) / 2 / zoom[sf]
                outside = (screen < -reach).any() or (screen > np.array([width, height]) + reach).any()
                distance = float(np.hypot(*(screen - mid)))
                if outside and actor.last_distance is not None and distance > actor.last_distance:
                    actor.world = None
                    actor.wait_until = tau[sf] + rng.uniform(0, 60)
                actor.last_distance = distance
            scene = (sf, canvas.copy())
        # ((x - 128) * contrast + 128 + brightness) * gain, folded into one multiply-add.
        canvas *= (contrast[f] * gain[f]).astype(np.float32)
        canvas += ((128.0 * (1 - contrast[f]) + brightness[f]) * gain[f]).astype(np.float32)
        noise = rng.standard_normal((height, width, 3), dtype=np.float32)
        noise *= noise_sigma
        canvas += noise
        frames[f] = _to_uint8(canvas)
    return frames


# --------------------------------------------------------------------------- registry

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
    folder: str | Path, name: str, count: int, num_frames: int, height: int, width: int,
    seed: int = 0, fps: float = 25.0, force: bool = False,
) -> list[Path]:
    """Writes ``count`` clips of generator ``name`` as H.264 mp4s (seeds seed .. seed+count-1);
    returns their paths. H.264 on purpose: real footage carries compression artefacts too.

    Raises:
        OutputError: a clip exists already and ``force`` is not set.
    """
    from ..video import check_output_path, write_mp4

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}_{seed + i:05d}.mp4" for i in range(count)]
    for path in paths:
        check_output_path(path, force=force)
    for i, path in enumerate(paths):
        write_mp4(path, generate(name, num_frames, height, width, seed + i), fps)
    return paths

"""Drawing helpers shared by the generators: colours, textures, sprites, camera maps.

Motion is sub-pixel and drawing is anti-aliased everywhere (OpenCV ``LINE_AA`` with
fixed-point ``shift``, or bilinear ``warpAffine`` of pre-rendered sprites), because integer
jumps would teach a predictor that motion comes in whole pixels.

Coordinates are (x, y) in pixels, x to the right and y down, pixel centres at integers, as
OpenCV has them. A 2x3 "inverse map" matrix takes an output pixel to the source pixel it
samples (``cv2.WARP_INVERSE_MAP``).

The leading underscores mark names private to the ``vidpred.synthetic`` package: its
generator modules share them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Below this, shapes sized as fractions of the frame shrink to a pixel or two and nothing
# meaningful moves.
MIN_SIDE = 16

# cv2 drawing takes fixed-point coordinates with this many fractional bits: 1/16 px steps.
SHIFT = 4
_ONE = 1 << SHIFT

# Texture spectrum is cut off above this frequency (cycles per pixel): detail finer than
# ~4 px aliases when the camera zooms out and would flicker instead of moving.
TEXTURE_CUTOFF = 0.25


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

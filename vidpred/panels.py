"""Drawing a render's frames: panels side by side, each between its caption and its readout.

Layout handed in and out: ``uint8 RGB (H, W, 3)`` images. A composed frame is
``(LABEL_HEIGHT + scale*h + FOOTER_HEIGHT, n*scale*w + (n-1)*GAP, 3)``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

from .errors import SettingError, VidpredError, shown
from .video import MAX_FRAME_PIXELS, max_decoded_bytes

LABEL_HEIGHT = 20  # pixels of the caption strip above each panel (even, for yuv420p)
FOOTER_HEIGHT = 20  # pixels of the readout strip below each panel (even, for yuv420p)
GAP = 4  # pixels between panels (even)
BACKGROUND = (24, 24, 24)
TEXT_COLOR = (235, 235, 235)

PANELS = ("actual", "predicted", "error", "copy_last", "flow", "motion")
DEFAULT_PANELS = ("actual", "predicted", "error")

# Absolute error (mean over RGB, on [0, 1]) shown at the top of the colour scale; larger
# errors saturate. A quarter of the range keeps the typical errors of a decent model
# (0.02-0.2 where things move) visible, while a moved object (0.5+) is plainly a miss.
ERROR_SCALE = 0.25
ERROR_COLORMAP = cv2.COLORMAP_INFERNO  # perceptually uniform, dark = no error


def _put_fitted_text(
    strip: np.ndarray, text: str | tuple[str, ...], x: int = 4, color=TEXT_COLOR
) -> None:
    """Writes text into a strip, shrinking the font until it fits the strip's width.

    ``text`` may be alternatives, longest first: the first that fits at a readable size is
    used (narrow panels get the short form), else the last one at the smallest size.
    """
    h, w = strip.shape[:2]
    choices = (text,) if isinstance(text, str) else text
    for i, choice in enumerate(choices):
        smallest = 0.25 if i == len(choices) - 1 else 0.35
        scale = 0.45
        while scale > smallest and _text_width(choice, scale) > w - x - 2:
            scale -= 0.05
        if _text_width(choice, scale) <= w - x - 2 or i == len(choices) - 1:
            break
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(strip, choice, (x, h - 6), font, scale, color, 1, cv2.LINE_AA)


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]


@functools.lru_cache(maxsize=64)
def caption_strip(text: str, width: int) -> np.ndarray:
    """Returns the uint8 RGB (LABEL_HEIGHT, width, 3) caption strip above a panel (cached:
    captions repeat on every frame; callers must not modify it)."""
    strip = np.full((LABEL_HEIGHT, width, 3), BACKGROUND, dtype=np.uint8)
    _put_fitted_text(strip, text)
    strip.flags.writeable = False
    return strip


def text_strip(width: int, text: str | tuple[str, ...] = "") -> np.ndarray:
    """Returns a uint8 RGB (FOOTER_HEIGHT, width, 3) readout strip holding ``text`` (or the
    first of several alternatives, longest first, that fits)."""
    strip = np.full((FOOTER_HEIGHT, width, 3), BACKGROUND, dtype=np.uint8)
    if text:
        _put_fitted_text(strip, text, color=(200, 200, 200))
    return strip


def error_heatmap(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Returns uint8 RGB (H, W, 3): |predicted - actual| (mean over RGB) in ERROR_COLORMAP,
    0 at the bottom of the scale and ERROR_SCALE (or more) at the top.

    Args:
        predicted, actual: uint8 RGB (H, W, 3).
    """
    diff = cv2.absdiff(predicted, actual)  # uint8 (H, W, 3)
    total = diff[..., 0].astype(np.uint16) + diff[..., 1] + diff[..., 2]  # 0..765
    return np.take(_error_colors_by_total(), total, axis=0)


@functools.cache
def _error_colors_by_total() -> np.ndarray:
    """Returns a uint8 RGB (766, 3) table: the heatmap colour of each sum of the three
    channels' absolute errors (0..3*255). A table lookup costs a fraction of computing the
    mean error in float and applying the colour map on every frame."""
    ramp = np.arange(256, dtype=np.uint8)[:, None]  # (256, 1)
    colors = cv2.cvtColor(cv2.applyColorMap(ramp, ERROR_COLORMAP), cv2.COLOR_BGR2RGB)[:, 0]
    error = np.arange(3 * 255 + 1) / (3 * 255.0)  # mean absolute error on [0, 1]
    level = np.clip(error / ERROR_SCALE * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return colors[level]


@functools.lru_cache(maxsize=8)
def scale_bar(width: int) -> np.ndarray:
    """Returns a readout strip with the error panel's colour scale: "0 [gradient] 0.25+"
    (cached, read-only)."""
    strip = text_strip(width)
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    high = f"{ERROR_SCALE:g}+"
    low_w = cv2.getTextSize("0", font, size, 1)[0][0]
    high_w = cv2.getTextSize(high, font, size, 1)[0][0]
    x0, x1 = 4 + low_w + 4, width - high_w - 8
    if x1 - x0 < 8:  # too narrow for labels: the gradient alone
        x0, x1 = 2, width - 2
    else:
        baseline = FOOTER_HEIGHT - 6
        cv2.putText(strip, "0", (4, baseline), font, size, TEXT_COLOR, 1, cv2.LINE_AA)
        cv2.putText(strip, high, (x1 + 4, baseline), font, size, TEXT_COLOR, 1, cv2.LINE_AA)
    ramp = np.linspace(0, 255, max(1, x1 - x0)).round().astype(np.uint8)[None, :]  # (1, n)
    colors = cv2.cvtColor(cv2.applyColorMap(ramp, ERROR_COLORMAP), cv2.COLOR_BGR2RGB)
    strip[5 : FOOTER_HEIGHT - 5, x0:x1] = colors
    strip.flags.writeable = False
    return strip


def greyed(frame: np.ndarray) -> np.ndarray:
    """Returns uint8 RGB (H, W, 3): the frame in dimmed grey, a picture of the past."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    dim = (0.45 * grey + 0.55 * BACKGROUND[0]).round().astype(np.uint8)
    return np.repeat(dim[:, :, None], 3, axis=2)


def parse_panels(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Returns the panel names of "actual,predicted,error,copy_last,flow,motion" (any order,
    no repeats).

    Raises:
        VidpredError: an unknown or repeated name, or none at all.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(n.strip().lower().replace("-", "_") for n in items if n.strip())
    unknown = [n for n in names if n not in PANELS]
    if unknown or not names:
        raise SettingError(
            lambda n: (
                f"{n('panels')}: unknown panel {', '.join(unknown) or '(none given)'}; "
                f"choose from {','.join(PANELS)}"
            )
        )
    if len(set(names)) != len(names):
        raise SettingError(
            lambda n: f"{n('panels')}: each panel at most once, got {','.join(names)}"
        )
    return names


def steps_text(n: int) -> str:
    return f"{n} step{'s' if n != 1 else ''}"


class Panel(NamedTuple):
    """One panel of an output frame."""

    caption: str  # above the panel
    image: np.ndarray  # uint8 RGB (H, W, 3) at the render's size
    readout: str | tuple[str, ...] = ""  # below it; alternatives longest first (see text_strip)
    scale_bar: bool = False  # below it, the error colour scale instead of a readout


def frame_panels(
    names: tuple[str, ...],
    *,
    predicted: np.ndarray,
    copy: np.ndarray,
    actual: np.ndarray | None,
    when: str,
    psnr_model: float | None = None,
    psnr_copy: float | None = None,
    frame_text: str = "",
    flow: np.ndarray | None = None,
    psnr_flow: float | None = None,
    motion: np.ndarray | None = None,
) -> list[Panel]:
    """Returns the panels of one output frame, in the order of ``names``.

    Args:
        names: panels to show, in order (see PANELS).
        predicted: uint8 RGB (H, W, 3), the model's prediction of this frame.
        copy: uint8 RGB (H, W, 3), the copy-last baseline: the last real frame the
            prediction was made from.
        actual: uint8 RGB (H, W, 3), the real frame; None past the end of the clip.
        when: how far ahead the prediction is, e.g. "3 steps ahead", for the captions.
        psnr_model, psnr_copy: PSNR in dB of the prediction and of copy-last (with ``actual``).
        frame_text: readout under the actual panel, e.g. "frame 12/40".
        flow: uint8 RGB (H, W, 3), the flow baseline's prediction of this frame from the same
            real frames as the model's; needed only for the flow panel.
        psnr_flow: PSNR in dB of the flow baseline (with ``actual``); None leaves it out of
            the predicted panel's readout.
        motion: float (H, W, 2), the flow (dx, dy) in pixels the model warped the last frame
            along; needed only for the motion panel.
    """
    truth = actual is not None
    panels = []
    for name in names:
        if name == "actual":
            if truth:
                panels.append(Panel("actual", actual, frame_text))
            else:
                readout = ("last real frame, greyed", "greyed")
                panels.append(Panel("actual: clip ended", greyed(copy), readout))
        elif name == "predicted":
            readout = _predicted_readout(psnr_model, psnr_copy, psnr_flow) if truth else NO_TRUTH
            panels.append(Panel(f"predicted, {when}", predicted, readout))
        elif name == "error":
            if truth:
                panels.append(Panel("abs error", error_heatmap(predicted, actual), scale_bar=True))
            else:
                blank = np.full(predicted.shape, BACKGROUND, dtype=np.uint8)
                panels.append(Panel("error: no ground truth", blank))
        elif name == "copy_last":
            panels.append(Panel(f"copy-last, {when}", copy, _psnr_readout(psnr_copy, truth)))
        elif name == "flow":
            if flow is None:
                raise ValueError("the flow panel needs the flow baseline's prediction (flow=)")
            readout = _psnr_readout(psnr_flow, truth)
            panels.append(Panel(f"flow baseline (DIS), {when}", flow, readout))
        elif name == "motion":
            if motion is None:
                raise ValueError("the motion panel needs the model's flow (motion=)")
            image, fastest = motion_image(motion)
            readout = (
                f"hue: direction, brightness: speed (max {fastest:.1f} px)",
                f"max {fastest:.1f} px",
                "",
            )
            panels.append(Panel("model's motion", image, readout))
        else:
            raise ValueError(f"unknown panel {name!r}")
    return panels


NO_TRUTH = ("no ground truth", "no truth")


def _psnr_readout(value: float | None, truth: bool) -> tuple[str, ...]:
    """A baseline panel's readout: its PSNR, longest form first (see ``text_strip``)."""
    return (f"PSNR {value:.1f} dB", f"{value:.1f} dB") if truth else NO_TRUTH


def _predicted_readout(model: float, copy: float, flow: float | None) -> tuple[str, ...]:
    """The predicted panel's readout, longest first: narrow panels drop the baselines'
    words, then the baselines."""
    if flow is None:
        return (
            f"PSNR {model:.1f} dB, copy-last {copy:.1f}",
            f"{model:.1f} dB | copy {copy:.1f}",
            f"{model:.1f} dB",
        )
    return (
        f"PSNR {model:.1f} dB, copy-last {copy:.1f}, flow {flow:.1f}",
        f"{model:.1f} dB | copy {copy:.1f} | flow {flow:.1f}",
        f"{model:.1f} dB | copy {copy:.1f}",
        f"{model:.1f} dB",
    )


def motion_image(flow: np.ndarray) -> tuple[np.ndarray, float]:
    """Returns (uint8 RGB (H, W, 3) colour coding of a flow float (H, W, 2), its largest
    motion in pixels): hue is the direction a pixel's content comes from, brightness its
    speed relative to that largest one (``torchvision.utils.flow_to_image``)."""
    from torchvision.utils import flow_to_image

    field = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1)
    fastest = float(field.square().sum(0).sqrt().max())
    return flow_to_image(field).permute(1, 2, 0).numpy(), fastest


def composed_size(h: int, w: int, panels: int, scale: int) -> tuple[int, int]:
    """Returns (height, width) of a frame ``compose_frame`` makes from ``panels`` panels of
    h x w pixels at ``scale``."""
    return LABEL_HEIGHT + h * scale + FOOTER_HEIGHT, panels * (w * scale + GAP) - GAP


def compose_frame(panels: list[Panel], scale: int = 1) -> np.ndarray:
    """Returns one uint8 RGB frame: the panels side by side, each upscaled by ``scale``
    (nearest neighbour, so the viewer sees the model's pixels, not a smoothed version of
    them) between its caption and its readout.

    Layout: '(LABEL_HEIGHT + scale*h + FOOTER_HEIGHT) (n scale*w)' with GAP-pixel columns
    between panels. Captions and readouts are drawn at the upscaled width, so their text
    stays sharp; the parts that repeat on every frame are drawn once and cached.
    """
    h, w = panels[0].image.shape[:2]
    ph, pw = h * scale, w * scale
    canvas = np.empty((*composed_size(h, w, len(panels), scale), 3), dtype=np.uint8)
    for i, panel in enumerate(panels):
        x = i * (pw + GAP)
        if i:
            canvas[:, x - GAP : x] = BACKGROUND
        canvas[:LABEL_HEIGHT, x : x + pw] = caption_strip(panel.caption, pw)
        image = panel.image
        if scale > 1:
            image = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_NEAREST)
        canvas[LABEL_HEIGHT : LABEL_HEIGHT + ph, x : x + pw] = image
        footer = scale_bar(pw) if panel.scale_bar else text_strip(pw, panel.readout)
        canvas[LABEL_HEIGHT + ph :, x : x + pw] = footer
    return canvas


# Panels whose shorter side is below this are shown at twice their size by default.
SMALL_PANEL = 200


def default_scale(frame_hw: tuple[int, int]) -> int:
    """Returns the panels' default upscaling: 2 for small panels (a 96-pixel working size,
    a 176x144 clip), else 1."""
    return 2 if min(frame_hw) < SMALL_PANEL else 1


def check_render_size(
    clip: Path, frame_hw: tuple[int, int], panels: int, scale: int, frames: int, gif: bool
) -> None:
    """Raises VidpredError, before anything is drawn, if one composed frame would be over
    MAX_FRAME_PIXELS, or if ``gif`` and the GIF's frames (held in memory until the end, and
    copied once more by the GIF encoder) would be over ``max_decoded_bytes()``."""
    height, width = composed_size(*frame_hw, panels, scale)
    if height * width > MAX_FRAME_PIXELS:
        raise VidpredError(
            f"{shown(clip)}: {panels} panels of {frame_hw[1]}x{frame_hw[0]} at --scale {scale} "
            f"make {width}x{height} frames ({height * width / 1e6:.1f} Mpx; the cap is "
            f"{MAX_FRAME_PIXELS / 1e6:.1f} Mpx per frame); use a smaller --scale or --size"
        )
    need, cap = 2 * frames * height * width * 3, max_decoded_bytes()
    if gif and need > cap:
        raise VidpredError(
            f"{shown(clip)}: a GIF of {frames} frames of {width}x{height} would take about "
            f"{need / 1e9:.1f} GB of memory while it is written (the cap is {cap / 1e9:.1f} GB); "
            "drop --gif, or use a shorter clip or a smaller --scale"
        )

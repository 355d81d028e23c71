"""A static index.html that shows every render in a folder with its metrics and weights.

The page is self-contained: inline CSS, training curves as inline SVG, videos referenced by
relative file name, no script and nothing fetched from the network. It opens straight from
disk (file://); ``vidpred.serve`` is only a convenience.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import OutputError, VidpredError
from .outputs import (
    NotRegularFile,
    atomic_write_bytes,
    claim_output,
    file_sha256,
    open_regular,
    read_regular,
)
from .sidecar import SIDECAR_FORMAT, SIDECAR_VERSION, sidecar_path

log = logging.getLogger(__name__)

INDEX_NAME = "index.html"
# First line of every page we write: an index.html without it is someone else's file.
MARKER = "<!-- written by vidpred gallery; rewritten on every run -->"

# A sidecar is a few KB, plus about 300 bytes per epoch of training log: 16 MiB is tens of
# thousands of epochs. A bigger one is not ours, and parsing it could take GBs of memory.
SIDECAR_MAX_BYTES = 16 << 20
# vidpred checkpoints are a few MB (100 MB would be a model far wider than any we train);
# past this the page says "not checked" rather than reading gigabytes to hash them.
HASH_MAX_BYTES = 2 << 30
# Whole numbers in a sidecar (frames, steps, horizon) must be exact in JSON (2**53), and other
# numbers (PSNR, loss, fps) far below what would overflow the chart's arithmetic.
MAX_WHOLE = 2**53
MAX_MAGNITUDE = 1e15
# Per-epoch log keys the chart and the "trained" line read.
LOG_NUMBERS = ("step", "train_loss", "val_psnr", "val_psnr_copy_last", "val_psnr_flow")

PANEL_MEANINGS = {
    "actual": "the real frame",
    "predicted": "the model's prediction of that frame",
    "error": "absolute error |predicted - actual| as a heatmap (scale bar below it)",
    "copy_last": "the copy-last baseline: the last real frame the prediction started from",
    "flow": "the optical-flow baseline: the last real frame warped along the DIS flow from it "
    "to the frame before (constant velocity), carried as many steps as the prediction",
    "motion": "the flow the model warped the last frame along: hue is the direction, "
    "brightness the speed",
}

# Rows of the metrics table: (label, sidecar key). A sidecar written before a method existed
# lacks its key; the row is then left out.
METHODS = (("model", "model"), ("copy-last", "copy_last"), ("flow (DIS)", "flow"))

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: #f4f4f1; color: #1d1d1b; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; }
h1 { font-size: 22px; margin: 0 0 4px; }
header p { margin: 4px 0; color: #55554f; }
section.render { background: #fff; border: 1px solid #ddddd6; border-radius: 8px;
                 margin: 16px 0; padding: 14px 16px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h2 .tag { font-size: 12px; font-weight: 500; background: #ecece6; border-radius: 10px;
          padding: 2px 8px; margin-left: 6px; color: #44443f; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
video { max-width: 100%; background: #181818; border-radius: 4px; display: block; }
.facts { flex: 1 1 340px; min-width: 300px; }
table.metrics { border-collapse: collapse; margin-bottom: 6px; }
table.metrics th, table.metrics td { padding: 2px 10px 2px 0; text-align: right; }
table.metrics th:first-child, table.metrics td:first-child { text-align: left; }
.gain { font-weight: 600; }
.gain.bad { color: #a33b1f; } .gain.good { color: #1f6f3a; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 8px 0; }
dt { color: #66665f; } dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: 13px; }
.warn { color: #a33b1f; }
figure { margin: 6px 0 0; } figcaption { font-size: 12px; color: #66665f; }
"""


def shown(path: str | Path) -> str:
    """Returns ``path`` as one printable line: unchanged if it is one, else with bytes that are
    not UTF-8 as ``\\xe9`` and control characters as ``\\n`` (so a warning stays one line)."""
    text = str(path)
    if text.isprintable():
        return text
    try:
        text = os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeError:  # a lone surrogate that did not come from a file name's bytes
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _esc(value: Any) -> str:
    return html.escape(shown(value), quote=True)


def _href(name: str) -> str:
    """Returns a file name as a relative URL (bytes that are not UTF-8 percent-encoded as is)."""
    return quote(os.fsencode(name))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _is_whole(value: Any, low: int) -> bool:
    return type(value) is int and low <= value <= MAX_WHOLE


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_MAGNITUDE
    )


def _is_name(value: Any) -> bool:
    """Whether ``value`` is a plain file name beside the render (no folder, not hidden)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 255
        and value == Path(value).name
        and not value.startswith(".")
        and "\0" not in value
    )


def check_sidecar(meta: Any) -> dict[str, Any]:
    """Returns ``meta`` if it is a render sidecar whose every field the gallery reads has the
    right type and range (the page is built from them: a string where a number belongs, or a
    path to a device, must not break it).

    Raises:
        ValueError: with what is wrong, naming the field.
    """
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ValueError("not a vidpred render sidecar")
    version = meta.get("version")
    if not _is_whole(version, 1):
        raise ValueError(f"no valid format version ({version!r:.40})")
    if version > SIDECAR_VERSION:
        raise ValueError(
            f"sidecar format version {version} is newer than this vidpred understands "
            f"({SIDECAR_VERSION}); upgrade vidpred"
        )

    def bad(key: str, wanted: str) -> ValueError:
        return ValueError(f"'{key}' must be {wanted}, got {meta[key]!r:.60}")

    def optional(key: str, ok, wanted: str) -> None:
        if meta.get(key) is not None and not ok(meta[key]):
            raise bad(key, wanted)

    optional("horizon", lambda v: _is_whole(v, 1), "a whole number >= 1")
    optional("extend", lambda v: _is_whole(v, 0), "a whole number >= 0")
    optional("frames", lambda v: _is_whole(v, 0), "a whole number >= 0")
    optional("fps", lambda v: _is_number(v) and v > 0, "a positive number")
    optional("scale", lambda v: _is_number(v) and v > 0, "a positive number")
    for key in ("clip", "created"):
        optional(key, lambda v: isinstance(v, str) and len(v) <= 4096, "a string")
    optional(
        "weights",
        lambda v: isinstance(v, str) and 0 < len(v) <= 4096 and "\0" not in v,
        "a file path",
    )
    optional(
        "weights_sha256",
        lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v),
        "a sha256 (64 hex digits)",
    )
    optional("gif", _is_name, "a file name beside the render")
    optional("first_frame", lambda v: _is_whole(v, 0), "a whole number >= 0")
    optional(
        "segment",
        lambda v: (
            isinstance(v, dict)
            and _is_number(v.get("start_s"))
            and v["start_s"] >= 0
            and (
                v.get("duration_s") is None or (_is_number(v["duration_s"]) and v["duration_s"] > 0)
            )
        ),
        "an object with start_s and duration_s in seconds",
    )
    optional(
        "panels",
        lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
        "a list of panel names",
    )

    def row_ok(row: Any) -> bool:
        return (
            isinstance(row, dict)
            and all(row.get(key) is None or _is_number(row[key]) for key in LOG_NUMBERS)
            and (row.get("step") is None or _is_whole(row["step"], 0))
        )

    optional(
        "training_log",
        lambda v: isinstance(v, list) and all(map(row_ok, v)),
        "a list of per-epoch rows with numbers",
    )
    metrics = meta.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise bad("metrics", "an object")
        if metrics.get("frames") is not None and not _is_whole(metrics["frames"], 0):
            raise ValueError(
                f"'metrics.frames' must be a whole number >= 0, got {metrics['frames']!r:.60}"
            )
        for _, key in METHODS:
            m = metrics.get(key)
            if m is not None and not (
                isinstance(m, dict) and all(_is_number(m.get(k)) for k in ("psnr", "ssim", "mae"))
            ):
                raise ValueError(
                    f"'metrics.{key}' must hold numbers psnr, ssim and mae, got {m!r:.60}"
                )
    return meta


def read_checked_sidecar(path: str | Path) -> dict[str, Any]:
    """Returns a render's sidecar metadata, read safely and checked (``check_sidecar``).

    Raises:
        FileNotFoundError: there is no sidecar.
        ValueError: it is not a usable sidecar (why: not a regular file, too large, not
            readable, not JSON, a field of the wrong type or range).
    """
    try:
        data = read_regular(path, SIDECAR_MAX_BYTES)
    except FileNotFoundError:
        raise
    except NotRegularFile as e:
        raise ValueError(str(e)) from e
    except OSError as e:
        raise ValueError(f"cannot read it ({e.strerror or e})") from e
    try:
        meta = json.loads(data)
    except (ValueError, RecursionError) as e:  # RecursionError: [[[[... nested deeper than Python
        raise ValueError("not valid JSON") from e
    return check_sidecar(meta)


@dataclass(frozen=True)
class Render:
    """An mp4 in the gallery folder and what its sidecar says (``meta`` None: none usable)."""

    video: Path
    meta: dict[str, Any] | None = None
    problem: str | None = None  # why the sidecar beside it was not used, if there is one


def find_renders(folder: str | Path) -> list[Render]:
    """Returns every render in ``folder`` by name, each with its sidecar if that is usable.
    A bad sidecar is logged as a warning and its render shown without metadata."""
    folder = Path(folder)
    videos = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() == ".mp4" and p.is_file() and not p.name.startswith(".")
    )
    renders = []
    for video in videos:
        side = sidecar_path(video)
        try:
            renders.append(Render(video, read_checked_sidecar(side)))
        except FileNotFoundError:
            renders.append(Render(video))
        except ValueError as e:
            log.warning("skipping %s: %s; its render is shown without metadata", shown(side), e)
            renders.append(Render(video, problem=str(e)))
    return renders


# A chart line: (name, points (step, value), colour, stroke-dasharray or "").
Series = tuple[str, list[tuple[float, float]], str, str]
# Pixels around a chart's plot area: room for the y labels, the legend and the x labels.
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 46, 10, 22, 26
CHART_TEXT = 'font-size="10" fill="#55554f" font-family="system-ui, sans-serif"'


def training_curve_svg(rows: list[dict[str, Any]], width: int = 380, height: int = 150) -> str:
    """Returns an inline SVG line chart of a training log ("" when there is nothing to plot).

    Plots validation PSNR of the model, of copy-last and of the flow baseline (where rows
    have ``val_psnr_flow``; older logs lack it) per epoch against the step where the log has
    them, else the training loss.
    """
    lines, unit = _curve_series(rows)
    if not lines:
        return ""
    plot = _Plot.around(lines, width, height)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" class="curve">',
        f"<title>{_esc(unit)} per epoch</title>",
        f'<rect x="{plot.left}" y="{plot.top}" width="{plot.width}" height="{plot.height}" '
        'fill="#fafaf7" stroke="#d0d0c8"/>',
        *_axis_labels(plot, unit, height),
        *_series_marks(lines, plot),
        "</svg>",
    ]
    return "".join(parts)


def _curve_series(rows: list[dict[str, Any]]) -> tuple[list[Series], str]:
    """Returns the lines of a training log's chart that have points, and their unit:
    validation PSNR of the model and the baselines, or the training loss if the log has no
    validation PSNR."""

    def series(key: str) -> list[tuple[float, float]]:
        return [
            (float(r["step"]), float(r[key]))
            for r in rows
            if isinstance(r.get(key), (int, float))
            and isinstance(r.get("step"), (int, float))
            and math.isfinite(r[key])
        ]

    lines = [
        ("model", series("val_psnr"), "#c2410c", ""),
        ("copy-last", series("val_psnr_copy_last"), "#6b6b66", "4 3"),
        ("flow", series("val_psnr_flow"), "#2563eb", "1 3"),
    ]
    unit = "validation PSNR, dB"
    if not lines[0][1]:
        lines = [("train loss", series("train_loss"), "#c2410c", "")]
        unit = "training loss"
    return [line for line in lines if line[1]], unit


@dataclass(frozen=True)
class _Plot:
    """A chart's plot area in SVG pixels and the data range it shows (x: steps; y: values,
    padded so that no line runs along the frame)."""

    left: int
    top: int
    width: int
    height: int
    x0: float  # x0..x1: the steps, widened to 2 when there is one
    x1: float
    y0: float  # y0..y1: the values, with ``pad`` added on each side
    y1: float
    pad: float
    steps: tuple[float, float]  # the first and last step logged

    @classmethod
    def around(cls, lines: list[Series], width: int, height: int) -> _Plot:
        """Returns the plot area of a ``width`` x ``height`` chart of ``lines``."""
        xs = [x for _, pts, _, _ in lines for x, _ in pts]
        ys = [y for _, pts, _, _ in lines for _, y in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        pad = (y1 - y0) * 0.08 or max(abs(y0) * 0.05, 0.5)
        return cls(
            CHART_LEFT,
            CHART_TOP,
            width - CHART_LEFT - CHART_RIGHT,
            height - CHART_TOP - CHART_BOTTOM,
            x0,
            x1,
            y0 - pad,
            y1 + pad,
            pad,
            (min(xs), max(xs)),
        )

    def px(self, x: float, y: float) -> str:
        """Returns the point (x, y) of the data as "px,py" in the SVG."""
        return (
            f"{self.left + (x - self.x0) / (self.x1 - self.x0) * self.width:.1f},"
            f"{self.top + (1 - (y - self.y0) / (self.y1 - self.y0)) * self.height:.1f}"
        )


def _axis_labels(plot: _Plot, unit: str, height: int) -> list[str]:
    """Returns the SVG texts around the plot area: the highest and lowest value, the first
    and last step, and the unit."""
    left, top, right = plot.left, plot.top, plot.left + plot.width
    parts = [
        f'<text x="{left - 4}" y="{anchor_y}" text-anchor="end" {CHART_TEXT}>{value:.4g}</text>'
        for value, anchor_y in (
            (plot.y1 - plot.pad, top + 10),
            (plot.y0 + plot.pad, top + plot.height - 2),
        )
    ]
    first, last = plot.steps
    return parts + [
        f'<text x="{left}" y="{height - 8}" {CHART_TEXT}>step {first:.0f}</text>',
        f'<text x="{right}" y="{height - 8}" text-anchor="end" {CHART_TEXT}>step {last:.0f}</text>',
        f'<text x="{left + plot.width / 2}" y="{height - 8}" text-anchor="middle" '
        f"{CHART_TEXT}>{_esc(unit)}</text>",
    ]


def _series_marks(lines: list[Series], plot: _Plot) -> list[str]:
    """Returns the SVG of each line (with a dot per point when there are few) and of its
    legend entry above the plot area."""
    parts = []
    legend_x = plot.left
    for name, pts, color, dash in lines:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(plot.px(x, y) for x, y in pts)
        parts.append(
            f'<polyline class="series" data-series="{_esc(name)}" points="{points}" '
            f'fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>'
        )
        if len(pts) <= 40:
            for x, y in pts:
                cx, cy = plot.px(x, y).split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        parts.append(
            f'<line x1="{legend_x}" y1="12" x2="{legend_x + 16}" y2="12" '
            f'stroke="{color}" stroke-width="2"{dash_attr}/>'
        )
        parts.append(f'<text x="{legend_x + 20}" y="15" {CHART_TEXT}>{_esc(name)}</text>')
        legend_x += 28 + 7 * len(name)
    return parts


def _weights_state(path: str) -> tuple[str | None, str | None]:
    """Returns (sha256, None) of a weights file, or (None, why it was not hashed)."""
    try:
        return file_sha256(path, HASH_MAX_BYTES), None
    except (FileNotFoundError, NotADirectoryError):
        return None, "the file is gone"
    except NotRegularFile as e:
        return None, f"not checked: {e}"
    except OSError as e:
        return None, f"cannot read it now ({e.strerror or e})"


def _weights_note(meta: dict[str, Any], states: dict[str, tuple[str | None, str | None]]) -> str:
    """Returns HTML saying which weights made a render and whether that file still holds them."""
    weights = meta.get("weights")
    if not weights:
        return "<span class='warn'>not recorded</span>"
    digest = meta.get("weights_sha256")
    if weights not in states:
        states[weights] = _weights_state(weights)
    now, why = states[weights]
    text = f"<code>{_esc(weights)}</code>"
    if digest:
        text += f" <span title='sha256 {_esc(digest)}'>(sha256 {_esc(digest[:12])})</span>"
    if why:
        text += f" <span class='warn'>{_esc(why)}</span>"
    elif digest and now != digest:
        text += " <span class='warn'>the file has changed since this render</span>"
    return text


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}" if minutes else f"{rest:.1f} s"


def _segment_tag(segment: dict) -> str:
    """Returns which part of the clip a render shows, e.g. "from 0:40.0 for 5.0 s"."""
    start, duration = segment["start_s"], segment.get("duration_s")
    return f"from {_clock(start)}" + (f" for {_clock(duration)}" if duration else " to the end")


def _section(render: Render, states: dict[str, tuple[str | None, str | None]]) -> str:
    """Returns the page's section for one render: its video, metrics, facts and training
    curve (``states`` caches the weights files' hashes across sections)."""
    mp4, meta = render.video, render.meta
    video = (
        f'<video src="{_href(mp4.name)}" controls muted loop playsinline preload="auto" '
        f'title="{_esc(mp4.name)}"></video>'
    )
    if meta is None:
        return _bare_section(render, video)
    horizon, extend = meta.get("horizon") or 1, meta.get("extend") or 0
    tags = [f"{horizon} step{'s' if horizon != 1 else ''} ahead"]
    if extend:
        tags.append(f"+{extend} frames past the end")
    if segment := meta.get("segment"):
        tags.append(_segment_tag(segment))
    title = Path(meta.get("clip") or mp4.name).name
    table = _metrics_html(meta.get("metrics") or {}, tags[0])
    trained, curve = _training_html(meta.get("training_log") or [])
    facts = _facts_html(meta, mp4, trained, _weights_note(meta, states))
    tag_html = "".join(f"<span class='tag'>{_esc(t)}</span>" for t in tags)
    return (
        f'<section class="render" data-video="{_esc(mp4.name)}"><h2>{_esc(title)}{tag_html}'
        f'</h2><div class="row">{video}<div class="facts">{table}{facts}{curve}</div></div>'
        "</section>"
    )


def _bare_section(render: Render, video: str) -> str:
    """Returns the section of a render without usable metadata: its video and why."""
    mp4 = render.video
    side = f"<code>{_esc(sidecar_path(mp4).name)}</code>"
    why = (
        f"Metadata not shown: the sidecar {side} is unusable ({_esc(render.problem)})."
        if render.problem
        else f"No metadata: this mp4 has no vidpred sidecar ({side})."
    )
    return (
        f'<section class="render"><h2>{_esc(mp4.name)}</h2><div class="row">{video}'
        f'<div class="facts"><p>{why}</p></div></div></section>'
    )


def _metrics_html(metrics: dict[str, Any], ahead: str) -> str:
    """Returns the metrics table of a render and the model's gain over the baselines
    (``ahead``: how many steps ahead, e.g. "1 step ahead")."""
    model, copy, flow = metrics.get("model"), metrics.get("copy_last"), metrics.get("flow")
    if not (model and copy):
        return "<p>No metrics: no rendered frame has ground truth.</p>"
    gain = model["psnr"] - copy["psnr"]
    table = (
        "<table class='metrics'><tr><th></th><th>PSNR dB</th><th>SSIM</th><th>MAE</th></tr>"
        + "".join(
            f"<tr><td>{name}</td><td class='psnr' data-method='{key}'>{_fmt(m['psnr'])}</td>"
            f"<td>{_fmt(m['ssim'], 4)}</td><td>{_fmt(m['mae'], 4)}</td></tr>"
            for name, key in METHODS
            if (m := metrics.get(key))
        )
        + "</table>"
        f"<p class='gain {'good' if gain > 0 else 'bad'}'>model vs copy-last: "
        f"{gain:+.2f} dB over {metrics.get('frames') or 0} frames, "
        f"{ahead}</p>"
    )
    if flow:
        gain = model["psnr"] - flow["psnr"]
        table += (
            f"<p class='gain {'good' if gain > 0 else 'bad'}'>model vs flow baseline: "
            f"{gain:+.2f} dB</p>"
        )
    return table


def _training_html(log_rows: list[dict[str, Any]]) -> tuple[str, str]:
    """Returns (how long the weights trained, in words; the HTML figure of their training
    curve, or "") from the training log a sidecar holds."""
    chart = training_curve_svg(log_rows)
    if not chart:
        return "unknown (no training log beside the weights)", ""
    last = log_rows[-1]
    trained = f"{last.get('step') or 0} steps, {len(log_rows)} logged epochs"
    curve = (
        f"<figure>{chart}<figcaption>training curve of these weights "
        "(from the log beside the checkpoint, as it was at render time)</figcaption>"
        "</figure>"
    )
    return trained, curve


def _facts_html(meta: dict[str, Any], mp4: Path, trained: str, weights_note: str) -> str:
    """Returns the list of a render's facts: weights, training, clip, settings, date."""
    panels = ", ".join(meta.get("panels") or [])
    extra = f" · <a href='{_href(meta['gif'])}'>GIF</a>" if meta.get("gif") else ""
    return (
        f"<dl><dt>weights</dt><dd>{weights_note}</dd>"
        f"<dt>trained</dt><dd>{_esc(trained)}</dd>"
        f"<dt>clip</dt><dd><code>{_esc(meta.get('clip') or '?')}</code></dd>"
        f"<dt>render</dt><dd>{meta.get('frames') or 0} frames at {_fmt(meta.get('fps'), 3)} "
        f"fps, panels {_esc(panels)}, scale {_esc(meta.get('scale') or '?')} · "
        f"<a href='{_href(sidecar_path(mp4).name)}'>metadata</a>{extra}</dd>"
        f"<dt>made</dt><dd>{_esc(meta.get('created') or '?')}</dd></dl>"
    )


def gallery_html(renders: list[Render], title: str) -> str:
    """Returns the whole page for the renders (``find_renders``)."""
    states: dict[str, tuple[str | None, str | None]] = {}
    shown_panels = sorted(
        {p for r in renders if r.meta for p in r.meta.get("panels") or []},
        key=lambda p: list(PANEL_MEANINGS).index(p) if p in PANEL_MEANINGS else 99,
    )
    legend = "; ".join(f"<b>{_esc(p)}</b>: {_esc(PANEL_MEANINGS.get(p, p))}" for p in shown_panels)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return "\n".join(
        [
            MARKER,
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
            f"<header><h1>{_esc(title)}</h1>",
            f"<p>{len(renders)} render{'s' if len(renders) != 1 else ''}, page written {stamp}. "
            "Every prediction is made from real frames before it only; the caption above each "
            "panel says how many steps ahead.</p>",
            f"<p>{legend}</p>" if legend else "",
            "</header><main>",
            *(_section(r, states) for r in renders),
            "</main></body></html>",
            "",
        ]
    )


def _written_by_us(index: Path) -> bool:
    """Whether ``index`` is a page this module wrote (read safely: it may be a FIFO or a link
    to a device, and it is then not ours)."""
    marker = MARKER.encode()
    try:
        with open_regular(index) as f:
            return f.read(len(marker)) == marker
    except OSError:
        return False


def write_gallery(folder: str | Path = "renders", *, force: bool = False) -> Path:
    """Writes ``folder``/index.html for the renders in ``folder``; returns its path.

    A render whose sidecar is unusable (see ``check_sidecar``) is shown without metadata,
    with a warning.

    Raises:
        VidpredError: the folder is missing, is not a folder, or holds no mp4.
        OutputError: an index.html that vidpred did not write is there (without ``force``),
            or the page cannot be written (read-only folder, disk full).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise VidpredError(f"{shown(folder)}: not a folder; name the folder of renders")
    if not folder.is_dir():
        raise VidpredError(
            f"{shown(folder)}: no such folder (render clips first: vidpred render CLIP)"
        )
    renders = find_renders(folder)
    if not renders:
        raise VidpredError(
            f"{shown(folder)}: no renders (*.mp4) found; make one with: vidpred render CLIP"
        )
    index = folder / INDEX_NAME

    def check_index() -> None:
        if (index.exists() or index.is_symlink()) and not force and not _written_by_us(index):
            raise OutputError(
                f"{shown(index)}: already exists and was not written by vidpred "
                "(use --force to overwrite)"
            )
        if index.is_dir() and not index.is_symlink():
            raise OutputError(f"{shown(index)}: is a folder; cannot write the page there")

    check_index()
    # Claimed like every output: a second gallery of the same folder is refused while this
    # one reads the renders and hashes their weights.
    with claim_output(index, check=check_index):
        missing = [shown(r.video.name) for r in renders if r.meta is None and r.problem is None]
        if missing:
            log.warning("no metadata for %s (rendered by an older vidpred?)", ", ".join(missing))
        title = f"vidpred renders: {folder.resolve().name}"
        # backslashreplace: a name that is not UTF-8 has already been shown escaped; this only
        # guards against a stray lone surrogate making the whole page unwritable.
        text = gallery_html(renders, title).encode("utf-8", "backslashreplace")
        try:
            atomic_write_bytes(index, lambda f: f.write(text))
        except OSError as e:  # its file name would be the hidden temp file, not the page
            raise OutputError(f"{shown(index)}: cannot write it ({e.strerror or e})") from e
    return index

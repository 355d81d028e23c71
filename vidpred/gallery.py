"""A static index.html that shows every render in a folder with its metrics and weights.

The page is self-contained: inline CSS, training curves as inline SVG, videos referenced by
relative file name, no script and nothing fetched from the network. It opens straight from
disk (file://); ``serve`` is only a convenience.
"""

from __future__ import annotations

import functools
import html
import logging
import math
import re
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .checkpoint import atomic_write_bytes
from .errors import OutputError, VidpredError
from .render import file_sha256, read_sidecar, sidecar_path

log = logging.getLogger(__name__)

INDEX_NAME = "index.html"
# First line of every page we write: an index.html without it is someone else's file.
MARKER = "<!-- written by vidpred gallery; rewritten on every run -->"

PANEL_MEANINGS = {
    "actual": "the real frame",
    "predicted": "the model's prediction of that frame",
    "error": "absolute error |predicted - actual| as a heatmap (scale bar below it)",
    "copy_last": "the copy-last baseline: the last real frame the prediction started from",
    "flow": "the optical-flow baseline: the last real frame warped along the DIS flow from it "
    "to the frame before (constant velocity), carried as many steps as the prediction",
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


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def find_renders(folder: str | Path) -> list[tuple[Path, dict[str, Any] | None]]:
    """Returns (mp4 path, sidecar metadata or None) for every render in ``folder``, by name."""
    folder = Path(folder)
    videos = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() == ".mp4" and p.is_file() and not p.name.startswith(".")
    )
    return [(p, read_sidecar(sidecar_path(p))) for p in videos]


def training_curve_svg(rows: list[dict[str, Any]], width: int = 380, height: int = 150) -> str:
    """Returns an inline SVG line chart of a training log ("" when there is nothing to plot).

    Plots validation PSNR of the model, of copy-last and of the flow baseline (where rows
    have ``val_psnr_flow``; older logs lack it) per epoch against the step where the log has
    them, else the training loss.
    """

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
    lines = [line for line in lines if line[1]]
    if not lines:
        return ""
    xs = [x for _, pts, _, _ in lines for x, _ in pts]
    ys = [y for _, pts, _, _ in lines for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.08 or max(abs(y0) * 0.05, 0.5)
    y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 46, 10, 22, 26
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float, y: float) -> str:
        return (
            f"{left + (x - x0) / (x1 - x0) * plot_w:.1f},"
            f"{top + (1 - (y - y0) / (y1 - y0)) * plot_h:.1f}"
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" class="curve">',
        f"<title>{_esc(unit)} per epoch</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafaf7" '
        'stroke="#d0d0c8"/>',
    ]
    style = 'font-size="10" fill="#55554f" font-family="system-ui, sans-serif"'
    for value, anchor_y in ((y1 - pad, top + 10), (y0 + pad, top + plot_h - 2)):
        parts.append(
            f'<text x="{left - 4}" y="{anchor_y}" text-anchor="end" {style}>{value:.4g}</text>'
        )
    parts.append(f'<text x="{left}" y="{height - 8}" {style}>step {min(xs):.0f}</text>')
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" {style}>'
        f"step {max(xs):.0f}</text>"
    )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle" '
        f"{style}>{_esc(unit)}</text>"
    )
    legend_x = left
    for name, pts, color, dash in lines:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(px(x, y) for x, y in pts)
        parts.append(
            f'<polyline class="series" data-series="{_esc(name)}" points="{points}" '
            f'fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>'
        )
        if len(pts) <= 40:
            for x, y in pts:
                cx, cy = px(x, y).split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        parts.append(
            f'<line x1="{legend_x}" y1="12" x2="{legend_x + 16}" y2="12" '
            f'stroke="{color}" stroke-width="2"{dash_attr}/>'
        )
        parts.append(f'<text x="{legend_x + 20}" y="15" {style}>{_esc(name)}</text>')
        legend_x += 28 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def _weights_note(meta: dict[str, Any], current_hashes: dict[str, str | None]) -> str:
    """Returns HTML saying which weights made a render and whether that file still holds them."""
    weights = meta.get("weights")
    if not weights:
        return "<span class='warn'>not recorded</span>"
    digest = meta.get("weights_sha256")
    if weights not in current_hashes:
        current_hashes[weights] = file_sha256(Path(weights))
    now = current_hashes[weights]
    text = f"<code>{_esc(weights)}</code>"
    if digest:
        text += f" <span title='sha256 {_esc(digest)}'>(sha256 {_esc(digest[:12])})</span>"
    if now is None:
        text += " <span class='warn'>the file is gone</span>"
    elif digest and now != digest:
        text += " <span class='warn'>the file has changed since this render</span>"
    return text


def _section(mp4: Path, meta: dict[str, Any] | None, hashes: dict[str, str | None]) -> str:
    src = quote(mp4.name)
    video = (
        f'<video src="{src}" controls muted loop playsinline preload="auto" '
        f'title="{_esc(mp4.name)}"></video>'
    )
    if meta is None:
        return (
            f'<section class="render"><h2>{_esc(mp4.name)}</h2><div class="row">{video}'
            '<div class="facts"><p>No metadata: this mp4 has no vidpred sidecar '
            f"(<code>{_esc(sidecar_path(mp4).name)}</code>).</p></div></div></section>"
        )
    horizon, extend = int(meta.get("horizon", 1)), int(meta.get("extend", 0))
    tags = [f"{horizon} step{'s' if horizon != 1 else ''} ahead"]
    if extend:
        tags.append(f"+{extend} frames past the end")
    title = Path(meta.get("clip") or mp4.name).name
    metrics = meta.get("metrics") or {}
    model, copy, flow = metrics.get("model"), metrics.get("copy_last"), metrics.get("flow")
    if model and copy:
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
            f"{gain:+.2f} dB over {int(metrics.get('frames', 0))} frames, "
            f"{tags[0]}</p>"
        )
        if flow:
            gain = model["psnr"] - flow["psnr"]
            table += (
                f"<p class='gain {'good' if gain > 0 else 'bad'}'>model vs flow baseline: "
                f"{gain:+.2f} dB</p>"
            )
    else:
        table = "<p>No metrics: no rendered frame has ground truth.</p>"
    log_rows = meta.get("training_log") or []
    chart = training_curve_svg(log_rows)
    if chart:
        last = log_rows[-1]
        trained = f"{int(last.get('step', 0))} steps, {len(log_rows)} logged epochs"
        curve = (
            f"<figure>{chart}<figcaption>training curve of these weights "
            "(from the log beside the checkpoint, as it was at render time)</figcaption>"
            "</figure>"
        )
    else:
        trained = "unknown (no training log beside the weights)"
        curve = ""
    panels = ", ".join(meta.get("panels", []))
    extra = f" · <a href='{quote(meta['gif'])}'>GIF</a>" if meta.get("gif") else ""
    facts = (
        f"<dl><dt>weights</dt><dd>{_weights_note(meta, hashes)}</dd>"
        f"<dt>trained</dt><dd>{_esc(trained)}</dd>"
        f"<dt>clip</dt><dd><code>{_esc(meta.get('clip', '?'))}</code></dd>"
        f"<dt>render</dt><dd>{int(meta.get('frames', 0))} frames at {_fmt(meta.get('fps'), 3)} "
        f"fps, panels {_esc(panels)}, scale {_esc(meta.get('scale', '?'))} · "
        f"<a href='{quote(sidecar_path(mp4).name)}'>metadata</a>{extra}</dd>"
        f"<dt>made</dt><dd>{_esc(meta.get('created', '?'))}</dd></dl>"
    )
    tag_html = "".join(f"<span class='tag'>{_esc(t)}</span>" for t in tags)
    return (
        f'<section class="render" data-video="{_esc(mp4.name)}"><h2>{_esc(title)}{tag_html}'
        f'</h2><div class="row">{video}<div class="facts">{table}{facts}{curve}</div></div>'
        "</section>"
    )


def gallery_html(renders: list[tuple[Path, dict[str, Any] | None]], title: str) -> str:
    """Returns the whole page for (mp4, sidecar metadata) pairs."""
    hashes: dict[str, str | None] = {}
    shown = sorted(
        {p for _, m in renders if m for p in m.get("panels", [])},
        key=lambda p: list(PANEL_MEANINGS).index(p) if p in PANEL_MEANINGS else 99,
    )
    legend = "; ".join(f"<b>{_esc(p)}</b>: {_esc(PANEL_MEANINGS.get(p, p))}" for p in shown)
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
            *(_section(mp4, meta, hashes) for mp4, meta in renders),
            "</main></body></html>",
            "",
        ]
    )


def write_gallery(folder: str | Path = "renders", *, force: bool = False) -> Path:
    """Writes ``folder``/index.html for the renders in ``folder``; returns its path.

    Raises:
        VidpredError: the folder is missing or holds no mp4.
        OutputError: an index.html that vidpred did not write is there (without ``force``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VidpredError(f"{folder}: no such folder (render clips first: vidpred render CLIP)")
    renders = find_renders(folder)
    if not renders:
        raise VidpredError(
            f"{folder}: no renders (*.mp4) found; make one with: vidpred render CLIP"
        )
    index = folder / INDEX_NAME
    if index.exists() and not force:
        try:
            ours = index.read_text(errors="replace").startswith(MARKER)
        except OSError:
            ours = False
        if not ours:
            raise OutputError(
                f"{index}: already exists and was not written by vidpred (use --force to overwrite)"
            )
    missing = [p.name for p, meta in renders if meta is None]
    if missing:
        log.warning("no metadata for %s (rendered by an older vidpred?)", ", ".join(missing))
    text = gallery_html(renders, f"vidpred renders: {folder.resolve().name}").encode()
    atomic_write_bytes(index, lambda f: f.write(text))
    return index


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Returns the half-open span [start, stop) of a file of ``size`` bytes that an HTTP
    Range header asks for, or None if the header is not one well-formed byte range (the
    whole file is then sent, as RFC 9110 allows). A span with start >= size cannot be
    satisfied (416)."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header, re.IGNORECASE)
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # "bytes=-N": the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n else (size, size)
    start = int(first)
    if last and int(last) < start:
        return None
    return start, min(int(last) + 1, size) if last else size


class GalleryRequestHandler(SimpleHTTPRequestHandler):
    """Serves the folder like ``http.server``, plus single byte ranges: browsers fetch and
    seek mp4s with Range requests, and some (Safari) will not play a video without them."""

    _span: tuple[int, int] | None = None

    def send_head(self):
        self._span = None
        path = Path(self.translate_path(self.path))
        if "Range" not in self.headers or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        span = byte_range(self.headers["Range"], size)
        if span is None:
            return super().send_head()
        start, stop = span
        if start >= size:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        try:
            f = open(path, "rb")  # noqa: SIM115 (handed to copyfile, closed by the server)
        except OSError:
            return super().send_head()  # its 404
        f.seek(start)
        self._span = span
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        return f

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        if self._span is None:
            return super().copyfile(source, outputfile)
        left = self._span[1] - self._span[0]
        while left > 0:
            block = source.read(min(left, 1 << 16))
            if not block:
                break
            outputfile.write(block)
            left -= len(block)


def serve(folder: str | Path, port: int = 8000) -> ThreadingHTTPServer:
    """Returns an HTTP server for ``folder`` on 127.0.0.1 (not yet serving: call serve_forever)."""
    handler = functools.partial(GalleryRequestHandler, directory=str(Path(folder).resolve()))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise VidpredError(f"--port {port}: cannot listen on 127.0.0.1 ({e.strerror})") from e

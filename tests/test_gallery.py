"""The gallery page: one video per render with its metrics, weights and training curve."""

import json
import shutil
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import moving_square, one_torch_thread, write_lossless

from vidpred.cli import main
from vidpred.errors import OutputError, VidpredError
from vidpred.gallery import write_gallery
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.serve import serve
from vidpred.sidecar import read_sidecar, sidecar_path


class Page(HTMLParser):
    """Collects the tags and attributes of a page, and its visible text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.tags if t == tag]


@pytest.fixture(scope="module")
def renders(tmp_path_factory, trained_checkpoint) -> Path:
    """A folder with two renders (one a 2-step rollout with a GIF and every panel) of
    lossless clips."""
    folder = tmp_path_factory.mktemp("renders")
    clips = tmp_path_factory.mktemp("clips")
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    left = write_lossless(clips / "left.avi", moving_square(14, 32, 32), fps=10)
    right = write_lossless(clips / "right.avi", moving_square(16, 32, 48, speed=3), fps=8)
    with one_torch_thread():
        render(left, predictor, folder / "left.pred.mp4")
        render(
            right,
            predictor,
            folder / "right.pred.mp4",
            settings=RenderSettings(
                horizon=2, gif=True, panels="actual,predicted,error,copy_last,flow"
            ),
        )
    return folder


def test_gallery_shows_each_render_with_its_metrics_weights_and_curve(renders, trained_checkpoint):
    index = write_gallery(renders)
    assert index == renders / "index.html"
    text = index.read_text()
    page = Page(text)
    videos = page.all("video")
    assert [v["src"] for v in videos] == ["left.pred.mp4", "right.pred.mp4"]
    assert all((renders / v["src"]).is_file() for v in videos)
    sections = text.split('<section class="render"')[1:]
    log_rows = read_sidecar(renders / "left.pred.json")["training_log"]
    for name, section in zip(("left", "right"), sections, strict=True):
        meta = read_sidecar(renders / f"{name}.pred.json")
        metrics = meta["metrics"]
        assert f"data-method='model'>{metrics['model']['psnr']:.2f}<" in section
        assert f"data-method='copy_last'>{metrics['copy_last']['psnr']:.2f}<" in section
        assert f"data-method='flow'>{metrics['flow']['psnr']:.2f}<" in section
        gain = metrics["model"]["psnr"] - metrics["copy_last"]["psnr"]
        assert f"{gain:+.2f} dB over {metrics['frames']} frames" in section
        flow_gain = metrics["model"]["psnr"] - metrics["flow"]["psnr"]
        assert f"model vs flow baseline: {flow_gain:+.2f} dB" in section
        assert str(trained_checkpoint.resolve()) in section
        assert meta["weights_sha256"][:12] in section
        # The curve: one point per epoch in the weights' JSONL log, model and copy-last (and
        # the flow baseline if the trainer logged it).
        curve = Page(section)
        lines = {p["data-series"]: p["points"].split() for p in curve.all("polyline")}
        logged_flow = any("val_psnr_flow" in r for r in log_rows)
        assert set(lines) == {"model", "copy-last"} | ({"flow"} if logged_flow else set())
        assert len(lines["model"]) == len([r for r in log_rows if "val_psnr" in r]) >= 1
    assert "2 steps ahead" in sections[1] and "href='right.pred.gif'" in sections[1]
    assert "flow: the optical-flow baseline" in "".join(Page(text.split("<main>")[0]).text)


def test_gallery_draws_the_flow_baseline_curve_only_where_the_log_has_it(tmp_path, renders):
    folder = tmp_path / "r"
    shutil.copytree(renders, folder)

    def edit_log(name: str, flow_psnr: float | None) -> int:
        """Sets (or, with None, removes) val_psnr_flow in every validated row of a sidecar's
        training log; returns how many rows have val_psnr."""
        meta = json.loads((folder / name).read_text())
        rows = [r for r in meta["training_log"] if "val_psnr" in r]
        for row in meta["training_log"]:
            row.pop("val_psnr_flow", None)
            if flow_psnr is not None and "val_psnr" in row:
                row["val_psnr_flow"] = flow_psnr + row["step"] / 100
        (folder / name).write_text(json.dumps(meta))
        return len(rows)

    validated = edit_log("left.pred.json", 21.0)
    edit_log("right.pred.json", None)  # a log from before the trainer scored the flow baseline
    left, right = write_gallery(folder).read_text().split('<section class="render"')[1:]
    lines = {p["data-series"]: p["points"].split() for p in Page(left).all("polyline")}
    assert set(lines) == {"model", "copy-last", "flow"}
    assert len(lines["flow"]) == validated == len(lines["model"])
    assert "flow" in Page(left.split("<svg")[1]).text
    lines = {p["data-series"] for p in Page(right).all("polyline")}
    assert lines == {"model", "copy-last"}
    assert "flow" not in Page(right.split("<svg")[1].split("</svg>")[0]).text  # no empty legend


def test_gallery_shows_sidecars_written_before_the_flow_baseline(tmp_path, renders):
    folder = tmp_path / "r"
    shutil.copytree(renders, folder)
    meta = json.loads((folder / "left.pred.json").read_text())
    del meta["metrics"]["flow"]
    for row in meta["training_log"]:
        row.pop("val_psnr_flow", None)
    (folder / "left.pred.json").write_text(json.dumps(meta))
    left = write_gallery(folder).read_text().split('<section class="render"')[1]
    metrics = meta["metrics"]
    assert f"data-method='model'>{metrics['model']['psnr']:.2f}<" in left
    assert f"data-method='copy_last'>{metrics['copy_last']['psnr']:.2f}<" in left
    assert "data-method='flow'" not in left and "flow baseline" not in left


def test_gallery_page_is_self_contained(renders):
    text = write_gallery(renders).read_text()
    page = Page(text)
    assert not page.all("script") and not page.all("link") and not page.all("img")
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            if value is not None:
                assert "://" not in value and not value.startswith("/"), (tag, value)
                assert (renders / value).is_file(), value


def test_gallery_never_overwrites_a_page_it_did_not_write(tmp_path, renders):
    folder = tmp_path / "r"
    shutil.copytree(renders, folder)
    (folder / "index.html").write_text("<p>my own page</p>")
    with pytest.raises(OutputError, match="--force"):
        write_gallery(folder)
    assert (folder / "index.html").read_text() == "<p>my own page</p>"
    write_gallery(folder, force=True)
    write_gallery(folder)  # its own page: rewritten without --force


def test_gallery_lists_mp4s_without_metadata_and_flags_changed_weights(tmp_path, renders):
    folder = tmp_path / "r"
    shutil.copytree(renders, folder)
    sidecar_path(folder / "left.pred.mp4").unlink()
    meta = json.loads((folder / "right.pred.json").read_text())
    meta["weights_sha256"] = "0" * 64  # as if the checkpoint was retrained after the render
    (folder / "right.pred.json").write_text(json.dumps(meta))
    text = write_gallery(folder).read_text()
    assert len(Page(text).all("video")) == 2
    assert "No metadata" in text and "has changed since this render" in text


def test_gallery_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(VidpredError, match="no such folder"):
        write_gallery(tmp_path / "missing")
    with pytest.raises(VidpredError, match="no renders"):
        write_gallery(tmp_path)
    assert main(["gallery", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "no renders" in err and "Traceback" not in err


def test_serve_answers_on_localhost(renders):
    write_gallery(renders)
    server = serve(renders, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10) as reply:
            assert b"left.pred.mp4" in reply.read()
        with urllib.request.urlopen(f"http://{host}:{port}/left.pred.mp4", timeout=10) as reply:
            assert reply.read() == (renders / "left.pred.mp4").read_bytes()
            assert reply.headers["Accept-Ranges"] == "bytes"
    finally:
        server.shutdown()
        server.server_close()


def test_serve_answers_byte_ranges_so_browsers_can_seek_videos(renders):
    video = (renders / "left.pred.mp4").read_bytes()
    server = serve(renders, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]

    def get(range_header: str):
        request = urllib.request.Request(
            f"http://{host}:{port}/left.pred.mp4", headers={"Range": range_header}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    try:
        status, headers, body = get("bytes=100-199")
        assert status == 206 and body == video[100:200]
        assert headers["Content-Range"] == f"bytes 100-199/{len(video)}"
        status, _, body = get("bytes=-50")  # the last 50 bytes: where an mp4 may keep its index
        assert status == 206 and body == video[-50:]
        status, _, body = get(f"bytes={len(video) - 10}-")
        assert status == 206 and body == video[-10:]
        status, headers, _ = get(f"bytes={len(video)}-")
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(video)}"
        status, _, body = get("bytes=0-5,10-20")  # several ranges: the whole file instead
        assert status == 200 and body == video
    finally:
        server.shutdown()
        server.server_close()


def test_the_legend_explains_every_panel_a_render_can_have():
    from vidpred.gallery import PANEL_MEANINGS
    from vidpred.panels import PANELS

    assert set(PANEL_MEANINGS) == set(PANELS)


def test_gallery_says_which_part_of_the_clip_a_segment_render_shows(tmp_path, renders):
    folder = tmp_path / "r"
    shutil.copytree(renders, folder)
    meta = json.loads((folder / "left.pred.json").read_text())
    meta["segment"] = {"start_s": 75.5, "duration_s": 5.0}
    (folder / "left.pred.json").write_text(json.dumps(meta))
    left, right = write_gallery(folder).read_text().split('<section class="render"')[1:]
    assert "from 1:15.5 for 5.0 s" in left and "from " not in Page(right).text

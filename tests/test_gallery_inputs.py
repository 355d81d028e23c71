"""`vidpred gallery` and `gallery --serve` against hostile or unlucky folders (issue 12, items
9 and 11-15): sidecars with wrong field types, special files where sidecars, weights or pages
belong, and requests that try to leave the served folder or confuse the server."""

import hashlib
import html
import http.client
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import default_sigint, subprocess_env

from vidpred import gallery
from vidpred.cli import main
from vidpred.gallery import write_gallery
from vidpred.serve import serve
from vidpred.sidecar import sidecar_bytes

# Every subprocess here must end: on code that hashes /dev/zero or opens a FIFO it would not.
# Generous: `vidpred` imports torch, and a busy machine can take a minute for that.
TIMEOUT_S = 300


def sidecar_fields(weights: Path) -> dict:
    """Returns the fields `vidpred render` writes into a sidecar, with plausible values."""
    summary = {"psnr": 30.5, "ssim": 0.91, "mae": 0.02}
    return {
        "video": "x.mp4",
        "gif": None,
        "clip": "/clips/x.mp4",
        "weights": str(weights),
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "training_log": [
            {
                "epoch": 1,
                "step": 10,
                "train_loss": 0.5,
                "val_psnr": 25.0,
                "val_psnr_copy_last": 24.0,
                "val_psnr_flow": 24.5,
            },
            {
                "epoch": 2,
                "step": 20,
                "train_loss": 0.4,
                "val_psnr": 27.0,
                "val_psnr_copy_last": 24.0,
                "val_psnr_flow": 24.5,
            },
        ],
        "frames": 12,
        "fps": 25.0,
        "duration_s": 0.48,
        "size": [32, 32],
        "scale": 2,
        "panels": ["actual", "predicted"],
        "horizon": 1,
        "extend": 0,
        "first_frame": 4,
        "metrics": {
            "frames": 8,
            "model": summary,
            "copy_last": {**summary, "psnr": 28.0},
            "flow": {**summary, "psnr": 29.0},
        },
        "created": "2025-01-01T00:00:00+00:00",
    }


def add_render(folder: Path, name: str, weights: Path, /, **changes) -> Path:
    """Writes a stand-in mp4 and a sidecar for it (the gallery never decodes the video);
    ``changes`` replace sidecar fields. Returns the sidecar's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.mp4").write_bytes(b"\0\0\0\x18ftypmp42 stand-in")
    sidecar = folder / f"{name}.json"
    # The changes through json.dumps, not sidecar_bytes: that writes strict JSON (NaN as null),
    # and a hostile sidecar (crafted, or from an older vidpred) may hold a bare NaN.
    fields = json.loads(sidecar_bytes(sidecar_fields(weights)))
    sidecar.write_text(json.dumps({**fields, **changes}, indent=1))
    return sidecar


@pytest.fixture
def weights(tmp_path) -> Path:
    path = tmp_path / "w" / "model.pt"
    path.parent.mkdir()
    path.write_bytes(b"checkpoint bytes")
    return path


def sections(page: str) -> dict[str, str]:
    """Returns each render's section of a gallery page, by video name."""
    out = {}
    for part in page.split('<section class="render"')[1:]:
        name = part.split("<video src=")[1].split('"')[1]
        out[name] = part
    return out


def run_vidpred(*args, cwd: Path) -> subprocess.CompletedProcess:
    """Runs `vidpred ARGS` in a subprocess capped at 6 GiB of address space (reading
    /dev/zero fails there instead of taking the machine's memory) and TIMEOUT_S seconds."""

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    return subprocess.run(
        [sys.executable, "-m", "vidpred", *args],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=TIMEOUT_S,
        preexec_fn=cap_memory,
    )


# Item 9: sidecars are validated like checkpoints; a bad one is skipped with a warning.

WRONG_FIELDS = {
    "horizon": "two",
    "fps": "25",
    "panels": [{}],
    "training_log": [1, 2],
    "weights_sha256": 12345,
    "extend": "x",
    "frames": "x",
    "clip": 5,
    "weights": 7,
    "gif": 3,
    "metrics": [1],
    "metrics.model": {"psnr": "a", "ssim": 0.9, "mae": 0.1},
    "training_log.step": [{"step": "x", "train_loss": 1.0}],
}


@pytest.mark.parametrize("field", WRONG_FIELDS)
def test_a_sidecar_field_of_the_wrong_type_skips_that_sidecar_with_a_warning(
    tmp_path, weights, field, caplog
):
    folder = tmp_path / "g"
    add_render(folder, "good", weights)
    value = WRONG_FIELDS[field]
    if field == "metrics.model":
        bad = sidecar_fields(weights)["metrics"] | {"model": value}
        side = add_render(folder, "bad", weights, metrics=bad)
    else:
        side = add_render(folder, "bad", weights, **{field.split(".")[0]: value})
    page = write_gallery(folder).read_text()
    by_name = sections(page)
    assert set(by_name) == {"good.mp4", "bad.mp4"}
    assert "data-method='model'>30.50<" in by_name["good.mp4"]  # the others are still shown
    assert "Metadata not shown" in by_name["bad.mp4"]
    assert f"'{field.split('.')[0]}" in html.unescape(by_name["bad.mp4"])  # names the field
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"skipping {side}: '{field.split('.')[0]}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("horizon", 0),
        ("extend", -1),
        ("fps", 0),
        ("fps", float("nan")),
        ("scale", -2),
        ("frames", True),
        ("gif", "../../secret.gif"),
        ("gif", "//evil.example/x.gif"),
        ("weights", "a\0b"),
        ("version", 99),
    ],
)
def test_a_sidecar_field_out_of_range_skips_that_sidecar(tmp_path, weights, field, value, caplog):
    folder = tmp_path / "g"
    side = add_render(folder, "bad", weights, **{field: value})
    page = write_gallery(folder).read_text()
    assert "Metadata not shown" in page
    hrefs = re.findall(r"(?:href|src)=['\"]([^'\"]*)", page)
    assert hrefs and not [h for h in hrefs if "evil" in h or ".." in h or "secret" in h]
    assert any(r.getMessage().startswith(f"skipping {side}: ") for r in caplog.records)


def test_sidecars_that_are_not_json_too_deep_or_too_big_are_skipped(
    tmp_path, weights, monkeypatch, caplog
):
    folder = tmp_path / "g"
    add_render(folder, "good", weights)
    add_render(folder, "deep", weights)
    (folder / "deep.json").write_text("[" * 100_000)  # RecursionError in json.loads
    monkeypatch.setattr(gallery, "SIDECAR_MAX_BYTES", 100_100)
    add_render(folder, "big", weights)
    (folder / "big.json").write_text((folder / "good.json").read_text() + " " * 100_000)
    by_name = sections(write_gallery(folder).read_text())
    assert "data-method='model'>30.50<" in by_name["good.mp4"]
    assert "not valid JSON" in by_name["deep.mp4"]
    assert "larger than" in by_name["big.mp4"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "deep.json: not valid JSON" in warned and "big.json: larger than" in warned


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_special_files_as_sidecars_or_weights_neither_hang_nor_exhaust_memory(tmp_path, weights):
    """A FIFO sidecar used to hang, a sidecar linked to /dev/zero to raise MemoryError, and
    weights at /dev/zero (or a FIFO) to be hashed forever."""
    folder = tmp_path / "g"
    add_render(folder, "good", weights)
    add_render(folder, "fifo", weights)
    (folder / "fifo.json").unlink()
    os.mkfifo(folder / "fifo.json")
    add_render(folder, "zero", weights)
    (folder / "zero.json").unlink()
    (folder / "zero.json").symlink_to("/dev/zero")
    add_render(folder, "zeroweights", weights, weights="/dev/zero")
    os.mkfifo(tmp_path / "w" / "fifo.pt")
    add_render(folder, "fifoweights", weights, weights=str(tmp_path / "w" / "fifo.pt"))
    done = run_vidpred("gallery", "g", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warnings = done.stderr.strip().splitlines()
    assert sorted(warnings) == [
        f"vidpred: warning: skipping g/{name}.json: not a regular file; "
        "its render is shown without metadata"
        for name in ("fifo", "zero")
    ]
    by_name = sections((folder / "index.html").read_text())
    assert len(by_name) == 5 and "data-method='model'>30.50<" in by_name["good.mp4"]
    for name in ("zeroweights", "fifoweights"):
        assert "not checked: not a regular file" in by_name[f"{name}.mp4"]
        assert "data-method='model'>30.50<" in by_name[f"{name}.mp4"]  # the render is fine


def test_weights_over_the_hash_cap_are_not_read(tmp_path, weights, monkeypatch):
    monkeypatch.setattr(gallery, "HASH_MAX_BYTES", 4)
    add_render(tmp_path / "g", "a", weights)
    page = write_gallery(tmp_path / "g").read_text()
    assert "not checked: larger than" in page and "has changed" not in page


def test_a_fifo_or_device_where_index_html_belongs_neither_hangs_nor_is_trusted(tmp_path, weights):
    folder = tmp_path / "g"
    add_render(folder, "a", weights)
    os.mkfifo(folder / "index.html")
    done = run_vidpred("gallery", "g", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "vidpred: error: g/index.html: already exists and was not written by vidpred "
        "(use --force to overwrite)"
    )
    (folder / "index.html").unlink()
    (folder / "index.html").symlink_to("/dev/zero")
    assert run_vidpred("gallery", "g", cwd=tmp_path).returncode == 1
    assert run_vidpred("gallery", "g", "--force", cwd=tmp_path).returncode == 0
    assert (folder / "index.html").is_file() and not (folder / "index.html").is_symlink()


def test_names_that_are_not_utf8_or_hold_a_newline_make_a_page_and_one_line_warnings(
    tmp_path, weights, capsys, caplog
):
    folder = tmp_path / "g"
    add_render(folder, "a", weights)
    (folder / os.fsdecode(b"caf\xe9.mp4")).write_bytes(b"x")
    (folder / "two\nlines.mp4").write_bytes(b"x")
    assert main(["gallery", str(folder)]) == 0
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in warning and "caf\\xe9.mp4" in warning and "two\\nlines.mp4" in warning
    captured = capsys.readouterr()
    assert captured.out == f"{folder / 'index.html'}\n"
    page = (folder / "index.html").read_text()
    assert '<video src="caf%E9.mp4"' in page and '<video src="two%0Alines.mp4"' in page


def test_a_file_named_as_the_folder_or_a_failed_write_is_one_clear_error(
    tmp_path, weights, monkeypatch, capsys
):
    (tmp_path / "notes.txt").write_text("not a folder")
    assert main(["gallery", str(tmp_path / "notes.txt")]) == 1
    assert capsys.readouterr().err == (
        f"vidpred: error: {tmp_path / 'notes.txt'}: not a folder; name the folder of renders\n"
    )
    add_render(tmp_path / "g", "a", weights)

    def disk_full(path, write):
        raise OSError(28, "No space left on device", str(path.with_name(".index.html.1.tmp")))

    monkeypatch.setattr(gallery, "atomic_write_bytes", disk_full)
    assert main(["gallery", str(tmp_path / "g")]) == 1
    assert capsys.readouterr().err == (
        f"vidpred: error: {tmp_path / 'g' / 'index.html'}: cannot write it "
        "(No space left on device)\n"
    )


def test_a_second_gallery_of_the_same_folder_is_refused_while_one_writes(tmp_path, weights, capsys):
    """index.html was the one output not claimed: two gallery runs (say, one per render
    script) raced on the page."""
    from vidpred.outputs import claim_output

    add_render(tmp_path / "g", "a", weights)
    index = tmp_path / "g" / "index.html"
    with claim_output(index):  # another vidpred writing the page (flock: per open file)
        assert main(["gallery", str(tmp_path / "g")]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"vidpred: error: {index}: another vidpred (PID {os.getpid()})")
        assert not index.exists()
    assert main(["gallery", str(tmp_path / "g")]) == 0 and index.is_file()
    assert sorted(p.name for p in index.parent.iterdir()) == ["a.json", "a.mp4", "index.html"]


# Items 11-15: `gallery --serve`.


@pytest.fixture
def served(tmp_path, weights):
    """A gallery folder, with hostile neighbours, served on a free port. Yields
    (folder, port, outside folder)."""
    folder = tmp_path / "g"
    add_render(folder, "a", weights)
    write_gallery(folder)
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text("the secret")
    (folder / "etcdir").symlink_to(outside)
    (folder / "secret.txt").symlink_to(outside / "secret.txt")
    (folder / "same.mp4").symlink_to(folder / "a.mp4")  # a link that stays inside: fine
    (folder / "sub").mkdir()
    (folder / "sub" / "clip.mp4").write_bytes(b"in a sub-folder")
    (folder / ".hidden").write_text("dotfile")
    os.mkfifo(folder / "fifo.mp4")
    (folder / "zero.mp4").symlink_to("/dev/zero")
    (folder / os.fsdecode(b"caf\xe9.mp4")).write_bytes(b"latin-1 name")
    server = serve(folder, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, server.server_address[1], outside
    finally:
        server.shutdown()
        server.server_close()


def get(
    port: int, path: str, host: str | None = None, headers: dict | None = None, method: str = "GET"
) -> tuple[int, dict, bytes]:
    """Returns (status, headers, up to 64 KB of body): a server streaming forever must not
    make the test read forever."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read(1 << 16)
    finally:
        connection.close()


def test_serve_follows_no_symbolic_link_out_of_the_folder(served):
    folder, port, _ = served
    for path in ("/etcdir/secret.txt", "/secret.txt", "/etcdir/", "/%2e%2e/private/secret.txt"):
        status, _, body = get(port, path)
        assert status == 404 and b"the secret" not in body, path
    status, _, body = get(port, "/same.mp4")
    assert status == 200 and body == (folder / "a.mp4").read_bytes()


def test_serve_lists_no_folder(served):
    folder, port, _ = served
    status, _, body = get(port, "/sub/")
    assert status == 404 and b"clip.mp4" not in body
    status, _, body = get(port, "/")  # the folder itself is its page
    assert status == 200 and body == (folder / "index.html").read_bytes()[: 1 << 16]
    (folder / "index.html").unlink()
    status, _, body = get(port, "/")
    assert status == 404 and b"a.mp4" not in body


def test_serve_answers_only_for_this_machine_s_names_on_its_port(served):
    _, port, _ = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert get(port, "/a.mp4", host=host)[0] == 200, host
    for host in (
        f"evil.example:{port}",
        "evil.example",
        f"127.0.0.1:{port + 1}",
        "127.0.0.1",
        f"localhost.evil.example:{port}",
        "",
    ):
        status, _, body = get(port, "/a.mp4", host=host)
        assert status in (403, 421) and b"stand-in" not in body, host
    # No Host header at all (HTTP/1.0 as a raw socket would send it).
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /a.mp4 HTTP/1.0\r\n\r\n")
        assert s.recv(64).split()[1] in (b"403", b"421")


def test_serve_never_serves_special_or_hidden_files(served):
    _, port, _ = served
    for path in ("/fifo.mp4", "/zero.mp4", "/.hidden", "/sub/../.hidden"):
        status, _, body = get(port, path)
        assert status in (403, 404) and len(body) < 10_000, path
        status, _, _ = get(port, path, headers={"Range": "bytes=0-99"})
        assert status in (403, 404), path
    status, _, body = get(port, "/caf%E9.mp4")  # a name that is not UTF-8 is still served
    assert status == 200 and body == b"latin-1 name"


@pytest.mark.parametrize(
    "range_header",
    [
        pytest.param("bytes=" + "9" * 5000 + "-", id="5000-digit start"),
        pytest.param("bytes=0-" + "9" * 5000, id="5000-digit end"),
        pytest.param("bytes=-" + "9" * 5000, id="5000-digit suffix"),
        "bytes=abc",
        "bytes=",
        "bytes=5-2",
        "bytes 0-5",
        "=0-5",
    ],
)
def test_serve_answers_a_malformed_or_huge_range_with_416(served, range_header):
    folder, port, _ = served
    size = (folder / "a.mp4").stat().st_size
    status, headers, body = get(port, "/a.mp4", headers={"Range": range_header})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}" and body == b""


def test_serve_still_answers_good_ranges_and_head(served):
    folder, port, _ = served
    video = (folder / "a.mp4").read_bytes()
    status, headers, body = get(port, "/a.mp4", headers={"Range": "bytes=2-5"})
    assert (
        status == 206 and body == video[2:6] and headers["Content-Range"].endswith(f"/{len(video)}")
    )
    status, headers, body = get(port, "/a.mp4", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len(video))
    status, _, body = get(port, "/a.mp4", headers={"Range": "items=0-1"})  # another unit
    assert status == 200 and body == video


# Messages.


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_serve_port_out_of_range_is_an_argparse_error(tmp_path, weights, port, capsys):
    add_render(tmp_path / "g", "a", weights)
    with pytest.raises(SystemExit) as stop:
        main(["gallery", str(tmp_path / "g"), "--serve", "--port", port])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --port: must be 0 to 65535 (0 picks a free port), got {port}" in err
    assert "Traceback" not in err


def test_serve_prints_a_folder_with_brackets_verbatim(tmp_path, weights):
    add_render(tmp_path / "g[/b]", "a", weights)

    def cap_memory_and_take_ctrl_c():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
        default_sigint()

    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpred", "gallery", "g[/b]", "--serve", "--port", "0"],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=cap_memory_and_take_ctrl_c,
    )
    watchdog = threading.Timer(TIMEOUT_S, proc.kill)
    watchdog.start()
    try:
        line = proc.stderr.readline()
        if line.startswith("serving g[/b] at http://127.0.0.1:"):
            port = int(line.split(":")[2].split("/")[0])
            assert get(port, "/a.mp4")[0] == 200  # serving, so Ctrl-C reaches serve_forever
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=TIMEOUT_S)[1]
    finally:
        watchdog.cancel()
        proc.kill()
    assert line.startswith("serving g[/b] at http://127.0.0.1:"), line + rest
    assert proc.returncode == 0 and "Traceback" not in rest

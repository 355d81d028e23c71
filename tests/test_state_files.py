"""vidpred's own state and cache files, hostile or damaged (issue 22, items 3-6 and 9): each is
read only if it is a regular file of bounded size and the right shape; a bad one counts as
absent (measured, decoded or forgotten again) with one warning line naming it. JSON that
vidpred prints or writes is strict. `gallery --serve` treats an absolute-form request target's
authority as the request's host."""

import http.client
import json
import logging
import math
import os
import resource
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import moving_square, run_cli_process, subprocess_env, write_lossless

from vidpred import cache, outputs, tuning
from vidpred.cli import main
from vidpred.gallery import write_gallery
from vidpred.paths import DEFAULT_WEIGHTS, state_dir
from vidpred.serve import serve
from vidpred.sidecar import sidecar_bytes

CPU = torch.device("cpu")
# A subprocess that would hang on a FIFO is killed after this: generous, as `import torch` can
# take many seconds on a busy machine, but the test then fails instead of hanging.
TIMEOUT_S = 120


def raise_on_constant(name: str):
    """json.loads' parse_constant: NaN, Infinity and -Infinity are not JSON (RFC 8259)."""
    raise AssertionError(f"not strict JSON: bare {name}")


def strict_loads(text: str | bytes):
    return json.loads(text, parse_constant=raise_on_constant)


def run_python(code: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh Python with warnings logged to stderr, capped at 6 GiB of
    address space (reading /dev/zero fails there instead of taking the machine's memory) and
    TIMEOUT_S seconds (a FIFO that blocks fails the test instead of hanging it)."""

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    prelude = "import logging; logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=TIMEOUT_S,
        env=subprocess_env(),
        preexec_fn=cap_memory,
    )


def warnings_naming(caplog, path: Path) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and str(path) in r.getMessage()
    ]


def plant(path: Path, kind: str) -> None:
    """Puts a FIFO or a link to /dev/zero where a state or cache file belongs."""
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


SPECIAL = [
    "fifo",
    pytest.param(
        "zero", marks=pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
    ),
]


# Item 3: arithmetic.json whose fields have the wrong type or range.


@pytest.fixture
def measuring(monkeypatch):
    """The measured arithmetic (conftest turns it off for other tests), without AMX, with
    nothing remembered in this process."""
    monkeypatch.delenv("VIDPRED_TUNING", raising=False)
    monkeypatch.setattr(tuning, "_chosen", {})
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)


def fake_rate(device, bf16, channels_last, **_) -> float:
    """Training samples/s or inference frames/s by candidate: fp32 contiguous wins."""
    return 30.0 if channels_last else 40.0


GOOD_CHOICE = {
    "bf16": False,
    "channels_last": True,
    "timings": {"fp32 contiguous": 33.0},
    "channels_last_inference": True,
}
BAD_CHOICES = {
    "bf16 as text": {**GOOD_CHOICE, "bf16": "no"},
    "bf16 as 1": {**GOOD_CHOICE, "bf16": 1},
    "layout as null": {**GOOD_CHOICE, "channels_last": None},
    "inference layout as text": {**GOOD_CHOICE, "channels_last_inference": "yes"},
    "timings as a list": {**GOOD_CHOICE, "timings": [1, 2]},
    "a timing as text": {**GOOD_CHOICE, "timings": {"fp32 contiguous": "fast"}},
    "a negative timing": {**GOOD_CHOICE, "timings": {"fp32 contiguous": -1}},
    "a field missing": {"bf16": False, "timings": {}},
    "an unknown field": {**GOOD_CHOICE, "turbo": True},
    "the choice as a list": [False, True],
}


def write_state(entry: object) -> Path:
    path = state_dir() / tuning.TUNING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cpu": entry}))
    return path


@pytest.mark.parametrize("choice", list(BAD_CHOICES.values()), ids=list(BAD_CHOICES))
def test_a_wrongly_typed_arithmetic_choice_is_measured_again_with_one_warning(
    measuring, caplog, choice
):
    path = write_state({"key": tuning._key(CPU), "choice": choice})
    chosen = tuning.choose(CPU, fake_rate, fake_rate)
    # Measured again: fp32 contiguous is the faster here.
    assert (chosen.bf16, chosen.channels_last, chosen.channels_last_inference) == (
        False,
        False,
        False,
    )
    assert len(warnings_naming(caplog, path)) == 1
    # and remembered in its place, with the right types
    stored = json.loads(path.read_text())["cpu"]["choice"]
    assert stored["bf16"] is False and stored["channels_last"] is False


def test_a_good_arithmetic_choice_is_used_without_a_warning(measuring, caplog):
    path = write_state({"key": tuning._key(CPU), "choice": GOOD_CHOICE})
    chosen = tuning.choose(CPU, lambda *a, **k: pytest.fail("measured"), fake_rate)
    assert chosen == tuning.Arithmetic(**GOOD_CHOICE)
    assert warnings_naming(caplog, path) == []


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '{"cpu": "fast"}', '{"cpu": [1]}', "[" * 100_000],
    ids=["not json", "a list", "an entry as text", "an entry as a list", "nested too deep"],
)
def test_an_arithmetic_file_that_is_not_ours_is_measured_again(measuring, caplog, text):
    path = state_dir() / tuning.TUNING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    assert tuning.choose(CPU, fake_rate, fake_rate).channels_last is False
    assert len(warnings_naming(caplog, path)) == 1
    assert json.loads(path.read_text())["cpu"]["choice"]["channels_last"] is False


def test_a_wrongly_typed_arithmetic_file_no_longer_breaks_eval(
    measuring, monkeypatch, caplog, capsys, tmp_path, trained_checkpoint
):
    """It used to end every command in `TypeError: set_autocast_enabled(): argument
    'enabled' must be bool, not str`, without naming the file."""
    path = write_state({"key": tuning._key(CPU), "choice": {**GOOD_CHOICE, "bf16": "no"}})
    monkeypatch.setattr(tuning, "measure", lambda device, *a: tuning.rule_of_thumb(device))
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    code = main(
        ["eval", str(clip), "--weights", str(trained_checkpoint), "--json", "--device", "cpu"]
    )
    assert code == 0, capsys.readouterr().err
    assert strict_loads(capsys.readouterr().out)["videos"][0]["targets"] > 0
    assert len(warnings_naming(caplog, path)) == 1


def test_a_remembered_batch_that_was_never_measured_is_measured_again(
    measuring, monkeypatch, caplog
):
    monkeypatch.setattr(tuning, "has_bf16_units", lambda device: False)
    monkeypatch.setattr(tuning, "describe_machine", lambda device: {"gpu": "Stub GPU"})
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    from vidpred.model import ModelConfig

    cuda = torch.device("cuda")

    def choose():
        return tuning.choose_batch(
            cuda,
            "fp32",
            ModelConfig(),
            (64, 64),
            16,
            rate=lambda *a, batch, **k: 10.0 * batch,
            arithmetic=tuning.Arithmetic(False, True, {}),
        )

    assert choose().batch_size == 16
    path = state_dir() / tuning.TUNING_FILE
    stored = json.loads(path.read_text())
    for bad in (0, 7, 1 << 40, "16", True):
        stored["cuda batch"]["choice"]["batch_size"] = bad
        path.write_text(json.dumps(stored))
        monkeypatch.setattr(tuning, "_chosen", {})
        caplog.clear()
        assert choose().batch_size == 16, bad
        assert len(warnings_naming(caplog, path)) == 1, bad


# Item 4: state files that are FIFOs or links to /dev/zero.


@pytest.mark.parametrize("kind", SPECIAL)
def test_an_arithmetic_file_that_is_a_fifo_or_dev_zero_is_measured_again(kind):
    path = state_dir() / tuning.TUNING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    plant(path, kind)
    result = run_python(
        """
        import os, torch
        os.environ.pop("VIDPRED_TUNING", None)
        from vidpred import tuning
        tuning.cpu_has_amx_bf16 = lambda: False
        rate = lambda device, bf16, channels_last, **_: 30.0 if channels_last else 40.0
        print(tuning.choose(torch.device("cpu"), rate, rate).channels_last)
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]
    assert result.stderr.count(str(path)) == 1 and "not a regular file" in result.stderr
    # The measurement replaced it with a regular file.
    assert stat.S_ISREG(path.lstat().st_mode)
    assert json.loads(path.read_text())["cpu"]["choice"]["channels_last"] is False


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_latest_json_that_is_a_fifo_or_dev_zero_is_ignored(kind):
    path = state_dir() / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    plant(path, kind)
    result = run_python(
        """
        from vidpred.weights import resolve_weights
        print(resolve_weights(None)[0])
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(DEFAULT_WEIGHTS)
    assert result.stderr.count(str(path)) == 1 and "not a regular file" in result.stderr


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="needs the shipped weights")
def test_eval_and_render_with_a_fifo_as_latest_json_use_the_shipped_weights(tmp_path):
    path = state_dir() / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    clip = write_lossless(tmp_path / "clip.avi", moving_square(10))
    _, results = run_cli_process(
        [
            ["eval", clip, "--json", "--device", "cpu"],
            ["render", clip, "--out", tmp_path / "r.mp4", "--device", "cpu"],
        ],
        timeout=TIMEOUT_S,
    )
    for code, err, _ in results:
        assert code == 0, err[-2000:]
        warnings = [line for line in err.splitlines() if str(path) in line]
        assert len(warnings) == 1 and warnings[0].startswith("vidpred: warning: ignoring")
    assert strict_loads(results[0][2])["weights"] == str(DEFAULT_WEIGHTS)


@pytest.mark.parametrize("text", ['{"path": 5}', "[]", '{"path": ""}', "not json"])
def test_a_latest_json_that_names_no_path_is_ignored_with_a_warning(caplog, text):
    path = state_dir() / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    from vidpred.weights import latest_trained

    assert latest_trained() is None
    assert len(warnings_naming(caplog, path)) == 1


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_training_log_that_is_a_fifo_or_dev_zero_is_not_read(tmp_path, kind):
    """render copies the log beside its weights into the sidecar: a FIFO there hung it."""
    log = tmp_path / "model.jsonl"
    plant(log, kind)
    result = run_python(
        f"""
        from vidpred.sidecar import read_training_log
        print(read_training_log({str(tmp_path / "model.pt")!r}))
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]
    assert result.stderr.count(str(log)) == 1 and "not a regular file" in result.stderr


# Item 5: the decode cache.


@pytest.mark.parametrize("suffix", [".npy", ".json", ".flow.npy"])
@pytest.mark.parametrize("kind", SPECIAL)
def test_a_fifo_or_dev_zero_in_the_decode_cache_is_decoded_again(tmp_path, suffix, kind):
    frames = moving_square(12)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    folder = tmp_path / "cache"
    video = cache.read_video_cached(clip, None, folder)
    cache.read_flows_cached(video, None, folder)
    (entry,) = (p for p in folder.iterdir() if p.name.split(".", 1)[1] == suffix[1:])
    plant(entry, kind)
    result = run_python(
        f"""
        import numpy as np
        from vidpred import cache
        video = cache.read_video_cached({str(clip)!r}, None, {str(folder)!r})
        flows = cache.read_flows_cached(video, None, {str(folder)!r})
        np.save({str(tmp_path / "frames.npy")!r}, np.asarray(video.frames))
        print(flows.shape)
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str((12, 32, 32, 2))
    assert np.array_equal(np.load(tmp_path / "frames.npy"), frames)
    assert result.stderr.count(str(entry)) == 1, result.stderr
    assert stat.S_ISREG(entry.lstat().st_mode)  # written again in its place


def test_a_cache_entry_that_is_not_an_array_is_decoded_again_with_a_warning(tmp_path, caplog):
    frames = moving_square(12)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    folder = tmp_path / "cache"
    cache.read_video_cached(clip, None, folder)
    (npy,) = folder.glob("*.npy")
    np.save(npy, np.array([{"a": 1}], dtype=object))  # a pickle inside: never loaded
    assert np.array_equal(cache.read_video_cached(clip, None, folder).frames, frames)
    assert len(warnings_naming(caplog, npy)) == 1


# Item 6: non-finite weights, and JSON that is strict.


@pytest.mark.parametrize(
    "key, which, value",
    [
        ("model", "parameter", math.nan),
        ("model", "buffer", math.inf),
        ("train_model", "parameter", -math.inf),
    ],
)
def test_non_finite_weights_are_refused_at_load(
    tmp_path, capsys, trained_checkpoint, key, which, value
):
    ckpt = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    state = ckpt[key] if key in ckpt else ckpt.setdefault(key, dict(ckpt["model"]))
    name = next(n for n in state if n.endswith("weight" if which == "parameter" else "running_var"))
    state[name] = state[name].clone()
    state[name][(0,) * state[name].dim()] = value
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    clip = write_lossless(tmp_path / "clip.avi", moving_square(10))
    for argv in (
        ["eval", clip, "--weights", bad, "--json"],
        ["render", clip, "--weights", bad, "--out", tmp_path / "r.mp4"],
    ):
        assert main([str(a) for a in argv]) != 0
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.startswith("vidpred")]
        assert len(lines) == 1 and "non-finite" in lines[0] and name in lines[0], captured.err
        assert str(bad) in lines[0] and captured.out == ""
    assert not (tmp_path / "r.mp4").exists()


NON_FINITE = {"psnr": math.nan, "ssim": math.inf, "nested": [{"mae": -math.inf}], "ok": 1.5}


def test_eval_json_is_strict_json(tmp_path, monkeypatch, capsys, trained_checkpoint):
    from vidpred import evaluation

    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: {"weights": None, **NON_FINITE})
    clip = write_lossless(tmp_path / "clip.avi", moving_square(10))
    assert main(["eval", str(clip), "--weights", str(trained_checkpoint), "--json"]) == 0
    result = strict_loads(capsys.readouterr().out)
    assert result["psnr"] is None and result["nested"][0]["mae"] is None and result["ok"] == 1.5


def test_bench_json_is_strict_json(monkeypatch, capsys):
    from vidpred import bench

    monkeypatch.setattr(bench, "run_bench", lambda **k: dict(NON_FINITE))
    assert main(["bench", "--json", "--quick"]) == 0
    assert strict_loads(capsys.readouterr().out)["ssim"] is None


def test_files_vidpred_writes_are_strict_json(tmp_path):
    from vidpred.training import _write_history

    assert strict_loads(sidecar_bytes(dict(NON_FINITE)))["psnr"] is None
    log = tmp_path / "model.jsonl"
    _write_history(log, [{"epoch": 1, "val_psnr": math.inf, "train_loss": math.nan}])
    (row,) = [strict_loads(line) for line in log.read_text().splitlines()]
    assert row == {"epoch": 1, "val_psnr": None, "train_loss": None}
    assert outputs.strict_json(NON_FINITE) == (
        '{"psnr": null, "ssim": null, "nested": [{"mae": null}], "ok": 1.5}'
    )


# Item 9: an absolute-form request target names the host.


@pytest.fixture
def served(tmp_path):
    """A gallery folder with one stand-in render, served on a free port. Yields the port."""
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"stand-in video")
    write_gallery(folder)
    server = serve(folder, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def get(port: int, target: str, host: str) -> tuple[int, bytes]:
    """Returns (status, up to 64 KB of body) of a GET of ``target`` with Host ``host``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, reply.read(1 << 16)
    finally:
        connection.close()


def test_serve_refuses_an_absolute_form_target_for_a_foreign_host(served):
    port = served
    ours = f"127.0.0.1:{port}"
    for target in (
        "http://evil.example/a.mp4",
        f"http://evil.example:{port}/a.mp4",
        f"http://{ours}@evil.example/a.mp4",
        f"http://127.0.0.1:{port + 1}/a.mp4",
        f"HTTP://EVIL.EXAMPLE:{port}/a.mp4",
    ):
        status, body = get(port, target, ours)
        assert status == 403 and b"stand-in" not in body, target
    for target in (f"ftp://{ours}/a.mp4", "*", ours):
        status, body = get(port, target, ours)
        assert status == 400 and b"stand-in" not in body, target


def test_serve_answers_an_absolute_form_target_for_its_own_host(served):
    port = served
    for authority in (f"127.0.0.1:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        for host in (f"127.0.0.1:{port}", "evil.example"):  # the target's authority wins
            assert get(port, f"http://{authority}/a.mp4", host) == (200, b"stand-in video")
    status, body = get(port, f"http://127.0.0.1:{port}", f"127.0.0.1:{port}")
    assert status == 200 and b"vidpred" in body  # no path: the page
    # An origin-form path that starts with // is a path, not a host.
    assert get(port, "//evil.example/a.mp4", f"127.0.0.1:{port}")[0] == 404
    assert get(port, "/a.mp4?x=1", f"127.0.0.1:{port}") == (200, b"stand-in video")

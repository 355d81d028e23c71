"""Interrupted or failing runs lose nothing: checkpoints stay good, outputs are whole or absent,
inputs are never touched."""

import errno
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY_TRAINING, default_sigint, moving_square, subprocess_env, write_lossless

from vidpred.checkpoint import load_checkpoint, metrics_log_path
from vidpred.cli import main
from vidpred.data import DataConfig, WindowDataset, load_videos
from vidpred.errors import OutputError, TrainingError
from vidpred.model import ModelConfig
from vidpred.outputs import atomic_write_bytes
from vidpred.predict import Predictor
from vidpred.rendering import render
from vidpred.training import TrainConfig, train
from vidpred.video_options import VideoOptions


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# Subprocesses import this checkout's vidpred whatever their working folder.
def vidpred(*args) -> list[str]:
    return [sys.executable, "-m", "vidpred", *map(str, args)]


@pytest.fixture
def tiny_data(square_folder):
    """(data, model config, data config) for runs of a few steps: 14 steps per epoch."""
    model_config = ModelConfig(frames=4, width=4, depth=1)
    data_config = DataConfig(size=32, val_fraction=0.2, crop=16)
    data = WindowDataset(
        load_videos(square_folder, 32, 5), model_config.input_offsets(), data_config
    )
    assert data.steps_per_epoch(4) == 14
    return data, model_config, data_config


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_the_printed_command_resumes(tmp_path, square_folder):
    """The command as a user runs it: Ctrl-C mid-run, then paste the command it printed."""
    out = tmp_path / "run ü [1]" / "model ü.pt"  # the printed command must survive this path
    out.parent.mkdir()
    run = subprocess.Popen(
        vidpred("train", square_folder, *TINY_TRAINING, "--steps", "100000", "--out", out),
        cwd=tmp_path,
        env=subprocess_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # Ctrl-C must reach it however pytest was started
    )
    deadline = time.monotonic() + 120
    while not out.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first epoch's checkpoint: training is under way
    if not out.exists():
        run.kill()
        pytest.fail(f"no checkpoint appeared: {run.communicate()[1]}")
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "Traceback" not in err
    step = load_checkpoint(out).step
    assert step > 0 and f"interrupted at step {step}" in err
    hint = err.strip().splitlines()[-1].split("Continue with: ")[1]
    command = shlex.split(hint)
    assert command[:3] == ["vidpred", "train", "--resume"] and command[3] == str(out)
    done = subprocess.run(
        vidpred(*command[1:], "--steps", step + 3),
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    resumed = load_checkpoint(out)
    assert resumed.step == step + 3 and resumed.sources == [str(square_folder.resolve())]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data, monkeypatch):
    data, model_config, data_config = tiny_data
    out = tmp_path / "m.pt"
    saved = {}

    def remember(row):  # called just after each epoch's checkpoint is written
        saved.update(checkpoint=digest(out), log=digest(metrics_log_path(out)))

    calls = []
    real_l1 = torch.nn.functional.l1_loss

    def l1_that_breaks(*args, **kwargs):
        calls.append(1)
        loss = real_l1(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 20 else loss  # step 20, in epoch 2

    monkeypatch.setattr(torch.nn.functional, "l1_loss", l1_that_breaks)
    config = TrainConfig(steps=40, batch_size=4, warmup_steps=2, device="cpu")
    with pytest.raises(
        TrainingError, match=f"loss became nan at step 19; .*last good checkpoint is {out}"
    ):
        train(data, model_config, data_config, config, out, on_epoch=remember)
    assert digest(out) == saved["checkpoint"] and digest(metrics_log_path(out)) == saved["log"]
    assert load_checkpoint(out).step == 14


def test_a_huge_lr_through_the_cli_stops_with_one_line(tmp_path, capsys, square_folder):
    out = tmp_path / "m.pt"
    code = main(
        [
            "train",
            str(square_folder),
            *TINY_TRAINING,
            "--steps",
            "20",
            "--lr",
            "1e30",
            "--out",
            str(out),
        ]
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vidpred")]
    assert code == 1 and len(lines) == 1, lines
    assert "became" in lines[0] and "no checkpoint was written" in lines[0] and "--lr" in lines[0]
    assert not out.exists()


def train_noting_digests(tiny_data, out: Path, saved: list[str]) -> None:
    """Trains 40 steps (epochs of 14), appending the checkpoint's sha256 after each epoch."""
    config = TrainConfig(steps=40, batch_size=4, warmup_steps=2, device="cpu")
    train(*tiny_data, config, out, on_epoch=lambda row: saved.append(digest(out)))


def test_weights_that_overflow_are_never_saved(tmp_path, tiny_data, monkeypatch):
    """A step whose loss was finite can still leave inf weights: the epoch-end save refuses them."""
    out = tmp_path / "m.pt"
    saved = []
    real_clip = torch.nn.utils.clip_grad_norm_
    calls = []

    def clip_then_overflow(parameters, *args, **kwargs):
        parameters = list(parameters)
        calls.append(1)
        if len(calls) == 28:  # the last step of epoch 2
            with torch.no_grad():
                parameters[0].fill_(float("inf"))
        return real_clip(parameters, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_then_overflow)
    with pytest.raises(TrainingError, match="weights became non-finite .* at step 28"):
        train_noting_digests(tiny_data, out, saved)
    assert len(saved) == 1 and digest(out) == saved[0]
    assert all(torch.isfinite(v).all() for v in load_checkpoint(out).model.values())


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, tiny_data, monkeypatch):
    out = tmp_path / "m.pt"
    saved = []
    real_save = torch.save

    def save_until_disk_full(obj, f, *args, **kwargs):
        if saved:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    with pytest.raises(OutputError, match="No space left on device.*previous one.*unchanged"):
        train_noting_digests(tiny_data, out, saved)
    assert digest(out) == saved[0] and load_checkpoint(out).step == 14
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl", "m.pt"]  # no temp file left


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    """The per-epoch JSONL log and every checkpoint go through this."""
    path = tmp_path / "m.jsonl"
    path.write_text('{"epoch": 0}\n')

    def write_half(f):
        f.write(b'{"epoch": 0}\n{"epo')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, write_half)
    assert path.read_text() == '{"epoch": 0}\n' and [p.name for p in tmp_path.iterdir()] == [
        "m.jsonl"
    ]


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_render_leaves_the_old_file_or_none(tmp_path, trained_checkpoint, existing):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(16))
    out = tmp_path / "out.mp4"
    if existing:
        out.write_bytes(b"the previous render")

    def stop_half_way(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    with pytest.raises(KeyboardInterrupt):
        render(
            clip,
            predictor,
            out,
            force=True,
            on_progress=stop_half_way,
            video_options=VideoOptions(batch_size=2),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"] + (
        ["out.mp4"] if existing else []
    )
    if existing:
        assert out.read_bytes() == b"the previous render"


def test_disk_full_during_render_is_one_line_and_leaves_no_file(
    tmp_path, capsys, monkeypatch, trained_checkpoint
):
    import vidpred.encoding

    clip = write_lossless(tmp_path / "clip.avi", moving_square(16))
    write = vidpred.encoding.Mp4Writer.write

    def write_until_disk_full(self, frame):
        if self.frames_written == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        write(self, frame)

    monkeypatch.setattr(vidpred.encoding.Mp4Writer, "write", write_until_disk_full)
    out = tmp_path / "out.mp4"
    assert main(["render", str(clip), "--weights", str(trained_checkpoint), "--out", str(out)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vidpred")]
    assert lines == [f"vidpred: error: {out}: No space left on device"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]


def test_interrupted_eval_exits_130(capsys, monkeypatch, square_folder, trained_checkpoint):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("vidpred.evaluation.evaluate", interrupted)
    assert main(["eval", str(square_folder), "--weights", str(trained_checkpoint)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "vidpred: interrupted"


# Runs `vidpred render` in-process and sends itself SIGTERM (what `kill` does) after 3 frames.
KILL_RENDER = r"""
import os, signal, sys
import vidpred.encoding
from vidpred.cli import main
write = vidpred.encoding.Mp4Writer.write
def write_then_kill(self, frame):
    write(self, frame)
    if self.frames_written == 3:
        os.kill(os.getpid(), signal.SIGTERM)
vidpred.encoding.Mp4Writer.write = write_then_kill
sys.exit(main(sys.argv[1:]))
"""


def test_killed_render_leaves_no_file(tmp_path, trained_checkpoint):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(16))
    out_dir = tmp_path / "renders"
    out_dir.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_RENDER,
            "render",
            str(clip),
            "--weights",
            str(trained_checkpoint),
            "--out",
            str(out_dir / "clip.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert result.returncode == 130, result.stderr
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert list(out_dir.iterdir()) == []  # neither the mp4 nor its temp file


def test_inputs_are_never_modified(tmp_path, capsys, trained_checkpoint):
    folder = tmp_path / "videos"
    write_lossless(folder / "a.avi", moving_square(16))
    write_lossless(folder / "sub" / "b.avi", moving_square(16, speed=3))
    weights = tmp_path / "weights.pt"
    weights.write_bytes(trained_checkpoint.read_bytes())

    def snapshot():
        files = sorted(p for p in [*folder.rglob("*"), weights] if p.is_file())
        return {p: (digest(p), p.stat().st_mtime_ns) for p in files}

    before = snapshot()
    assert (
        main(
            ["train", str(folder), *TINY_TRAINING, "--steps", "3", "--out", str(tmp_path / "m.pt")]
        )
        == 0
    )
    assert main(["train", "--resume", str(tmp_path / "m.pt"), "--steps", "5"]) == 0
    assert (
        main(
            [
                "render",
                str(folder / "a.avi"),
                "--weights",
                str(weights),
                "--out",
                str(tmp_path / "r.mp4"),
            ]
        )
        == 0
    )
    assert main(["eval", str(folder), "--weights", str(weights), "--json"]) == 0
    capsys.readouterr()
    assert snapshot() == before

"""The command as a user runs it: real processes, exit codes and stderr."""

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import moving_square, write_lossless

# With cwd elsewhere, `-m vidpred` would import an installed vidpred, not this checkout's.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd=None, env=None):
    path = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "vidpred", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        timeout=300,
    )


def assert_one_line_error(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    # Informational lines (which weights were used) may come first; the error is one line.
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("weights: ")
    ]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_help_lists_every_command_and_defaults():
    result = run("--help")
    assert result.returncode == 0
    for command in ("train", "render", "eval"):
        assert command in result.stdout
    train_help = run("train", "--help").stdout
    assert "--time-limit" in train_help and "default: 96" in train_help


def test_missing_path(tmp_path):
    assert_one_line_error(run("train", tmp_path / "nope"), "nope", "no such file")


def test_folder_without_videos(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    assert_one_line_error(run("train", tmp_path), "no video files")


def test_file_that_is_not_a_video(tmp_path, trained_checkpoint):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video at all\n" * 50)
    assert_one_line_error(run("render", fake, "--weights", trained_checkpoint), "fake.mp4")


def test_weights_that_are_not_a_checkpoint(tmp_path, square_folder):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(256))
    assert_one_line_error(
        run("eval", square_folder, "--weights", bad), "bad.pt", "not a vidpred checkpoint"
    )


def test_nonsense_option_names_the_option(square_folder):
    result = run("train", square_folder, "--frames", "0")
    assert (
        result.returncode == 2 and "--frames" in result.stderr and "Traceback" not in result.stderr
    )


# A training run of a few seconds on the 32 px square folder.
SMALL_RUN = "--size 32 --crop 16 --width 8 --depth 1 --batch-size 4".split()


def test_train_then_render_uses_the_new_weights(tmp_path, square_folder):
    """The user's path: train on a folder, then render without --weights."""
    home = {"VIDPRED_HOME": str(tmp_path / "home")}
    result = run("train", square_folder, *SMALL_RUN, "--steps", "4", cwd=tmp_path, env=home)
    assert result.returncode == 0, result.stderr
    checkpoint = tmp_path / "weights" / f"{square_folder.name}.pt"
    assert checkpoint.is_file() and result.stdout.strip().endswith(f"{square_folder.name}.pt")
    assert "copy-last" in result.stderr  # the per-epoch validation line
    # It ends by saying how to watch and score what it made (the eval on the held-out part).
    next_steps = result.stderr.strip().splitlines()[-2:]
    weights = f"weights/{square_folder.name}.pt"
    assert next_steps[0].endswith(f"vidpred render CLIP --weights {weights}")
    assert f"vidpred eval {square_folder} --weights {weights} --tail 0.2" in next_steps[1]
    # A second run must not overwrite it silently.
    again = run("train", square_folder, "--size", "32", "--steps", "1", cwd=tmp_path, env=home)
    assert_one_line_error(again, "already exists", "--force")
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    rendered = run("render", clip, cwd=tmp_path, env=home)
    assert rendered.returncode == 0, rendered.stderr
    assert "newest checkpoint written by `vidpred train`" in rendered.stderr
    assert str(checkpoint.name) in rendered.stderr
    assert (tmp_path / "renders" / "clip.pred.mp4").is_file()


def test_train_never_overwrites_another_runs_log(tmp_path, square_folder):
    """A new checkpoint name whose .jsonl log exists (another run's) needs --force too."""
    log = tmp_path / "m.jsonl"
    log.write_text('{"epoch": 0, "val_psnr": 30.0}\n')
    args = (
        "train",
        square_folder,
        *SMALL_RUN,
        "--steps",
        "2",
        "--out",
        tmp_path / "m.pt",
    )
    assert_one_line_error(run(*args), "m.jsonl", "already exists", "--force")
    assert (
        log.read_text() == '{"epoch": 0, "val_psnr": 30.0}\n' and not (tmp_path / "m.pt").exists()
    )
    assert run(*args, "--force").returncode == 0
    assert (tmp_path / "m.pt").is_file() and '"val_psnr": 30.0' not in log.read_text()


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(os.path.dirname(__file__), "..", "weights", "default.pt")),
    reason="weights/default.pt is not built yet",
)
def test_render_with_shipped_default_weights_from_any_folder(tmp_path):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12, 64, 64))
    result = run(
        "render",
        clip,
        "--out",
        tmp_path / "r.mp4",
        cwd=tmp_path,
        env={"VIDPRED_HOME": str(tmp_path / "empty_home")},
    )
    assert result.returncode == 0, result.stderr
    assert "shipped default weights" in result.stderr
    assert (tmp_path / "r.mp4").stat().st_size > 0


def test_generate_writes_playable_training_clips(tmp_path):
    result = run(
        "generate",
        tmp_path / "gen",
        "--kind",
        "natural",
        "--count",
        "2",
        "--length",
        "20",
        "--height",
        "48",
        "--width",
        "64",
    )
    assert result.returncode == 0, result.stderr
    from vidpred.video import read_video

    clips = sorted((tmp_path / "gen").glob("*.mp4"))
    assert len(clips) == 2
    video = read_video(clips[0])
    assert video.frames.shape == (20, 48, 64, 3)
    again = run("generate", tmp_path / "gen", "--count", "1", "--length", "20")
    assert_one_line_error(again, "already exists")


@pytest.mark.parametrize("command", ["train", "render", "eval", "generate", "gallery", "bench"])
def test_help_gives_each_option_one_default(command, capsys):
    from vidpred.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: None)" not in text
    # One option's help ends where the next option's name starts.
    for option_help in re.split(r" (?=--?[a-z])", text):
        assert option_help.count("(default") <= 1, option_help


def test_eval_table_is_whole_when_piped_and_says_what_each_method_is(
    tmp_path, capsys, trained_checkpoint
):
    from vidpred.cli import main

    clip = write_lossless(tmp_path / "a clip with a rather long name.avi", moving_square(14))
    assert main(["eval", str(clip), "--weights", str(trained_checkpoint), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "a clip with a rather long name.avi" in out  # not cut to 80 columns
    for method in ("copy_last", "linear", "flow", "model alone", "model (flow shown"):
        assert method in out, method
    assert "copy_last: frame t-1 unchanged" in out and "optical flow" in out  # the legend
    assert max(len(line) for line in out.splitlines()) > 80


def test_eval_says_which_scored_targets_were_training_frames(tmp_path, capsys, caplog):
    """A checkpoint trained on a folder, evaluated on it: the whole video is scored by
    default, and 80% of those targets were trained on (the last 20% was validation)."""
    import logging

    from vidpred.cli import main

    folder = tmp_path / "mine"
    write_lossless(folder / "a.avi", moving_square(25))
    other = write_lossless(tmp_path / "other.avi", moving_square(25))
    weights = tmp_path / "w.pt"
    assert (
        main(["-q", "train", str(folder), *SMALL_RUN, "--steps", "2", "--out", str(weights)]) == 0
    )
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(["eval", str(folder), str(other), "--weights", str(weights), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    mine, new = result["videos"]
    # Targets 4..24 scored; frames from floor(25 * 0.8) = 20 on were validation.
    assert (mine["targets"], mine["trained_on"]) == (21, 16)
    assert new["trained_on"] == 0
    assert "16 of the 21 scored targets were training frames" in caplog.text
    assert "--tail 0.2 scores only the part they never trained on" in caplog.text
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        main(["eval", str(folder), "--weights", str(weights), "--json", "--tail", "0.2"])
    assert json.loads(capsys.readouterr().out)["videos"][0]["trained_on"] == 0
    assert "training frames" not in caplog.text

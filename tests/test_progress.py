"""With stderr in a log (not a terminal), long commands write plain progress lines."""

import io
import time

import pytest
from rich.console import Console

import vidpred.progress
from vidpred.cli import main
from vidpred.progress import LogProgress, progress_display


def log_console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=200), text


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_says_done_of_total_the_rate_and_the_time_left():
    console, _ = log_console()
    clock = FakeClock()
    progress = LogProgress(console, clock=clock)
    task = progress.add_task("render", total=None, unit="frames")
    clock.now += 20
    progress.update(task, completed=50, total=200)
    assert progress.line(task) == (
        "render: 50/200 frames (25%), 2.5 frames/s, 0:20 elapsed, eta 1:00"
    )


def test_a_fraction_task_shows_its_percentage_and_its_info():
    console, _ = log_console()
    clock = FakeClock()
    progress = LogProgress(console, clock=clock)
    task = progress.add_task("train", total=1.0, info="")
    clock.now += 3600
    progress.update(task, completed=0.25, info="step 1200  loss 0.0100  50.0 samples/s")
    assert progress.line(task) == (
        "train: 25%, step 1200  loss 0.0100  50.0 samples/s, 1:00:00 elapsed, eta 3:00:00"
    )


def test_without_a_total_it_shows_its_info_and_the_time_elapsed():
    console, _ = log_console()
    clock = FakeClock()
    progress = LogProgress(console, clock=clock)
    task = progress.add_task("eval", total=None, info="")
    clock.now += 75
    progress.update(task, info="clip.mp4 (300 targets)")
    assert progress.line(task) == "eval: clip.mp4 (300 targets), 1:15 elapsed"


def test_lines_come_every_interval_while_the_work_is_silent_and_once_at_the_end():
    console, text = log_console()
    with LogProgress(console, interval=0.05) as progress:
        task = progress.add_task("render", total=10, unit="frames")
        time.sleep(0.6)  # one slow step: no update at all
        progress.update(task, completed=10)
    lines = text.getvalue().splitlines()
    assert len(lines) >= 5, lines
    assert all(line.startswith("render: ") for line in lines)
    assert lines[-1].startswith("render: 10/10 frames (100%)")


def test_a_failed_command_gets_no_closing_line_and_quiet_gets_none():
    console, text = log_console()
    with pytest.raises(RuntimeError), LogProgress(console, interval=60) as progress:
        progress.add_task("render", total=10, unit="frames")
        raise RuntimeError
    with LogProgress(console, interval=0.01, disable=True) as progress:
        progress.add_task("render", total=10, unit="frames")
        time.sleep(0.1)
    assert text.getvalue() == ""


def test_a_terminal_gets_the_live_bar_and_a_log_gets_lines():
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert not isinstance(progress_display(terminal), LogProgress)
    assert isinstance(progress_display(log_console()[0]), LogProgress)


@pytest.fixture
def short_interval(monkeypatch):
    monkeypatch.setattr(vidpred.progress, "LOG_INTERVAL_S", 0.02)


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_render_eval_and_train_write_progress_lines_to_a_log(
    capsys, short_interval, tmp_path, square_folder, trained_checkpoint
):
    clip = square_folder / "a.avi"
    code, err = run(
        capsys, "render", clip, "--weights", trained_checkpoint, "--out", tmp_path / "r.mp4"
    )
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("render: ")]
    assert lines and lines[-1].startswith("render: 36/36 frames (100%)"), err

    code, err = run(capsys, "eval", clip, "--weights", trained_checkpoint)
    assert code == 0
    assert any(line.startswith("eval: a.avi (") for line in err.splitlines()), err

    tiny = ["--size", "32", "--crop", "16", "--width", "4", "--depth", "1", "--batch-size", "4"]
    code, err = run(
        capsys, "train", square_folder, *tiny, "--steps", "20", "--out", tmp_path / "t.pt"
    )
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("train: ")]
    assert lines and lines[-1].startswith("train: 100%, step 20"), err

    code, err = run(
        capsys, "-q", "render", clip, "--weights", trained_checkpoint, "--out", tmp_path / "q.mp4"
    )
    assert code == 0 and "render: " not in err

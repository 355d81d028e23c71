"""Shared helpers: small videos the tests write themselves, and an isolated state folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import moving_square, one_torch_thread, write_lossless

# The tests train tiny models. On a small, busy CPU, OpenMP threads spin-waiting for each
# other made each step 20-50x slower than one thread does (measured on 2 shared cores).
# Set here, the variable also reaches the `vidpred` subprocesses the tests start.
# Choosing the arithmetic by measurement (vidpred.tuning) takes seconds per state folder, and
# every test has its own: tests use the rule of thumb; tests/test_tuning.py tests the choice.
os.environ.setdefault("VIDPRED_TUNING", "off")
if "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Skips tests marked requires_cuda where there is no GPU, so CI runs on CPUs."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def isolated_session_cache(tmp_path_factory):
    """Keeps the decode cache of session-scoped fixtures (they run before any per-test
    fixture) out of the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIDPRED_CACHE", str(tmp_path_factory.mktemp("vidpred_session_cache")))
        yield


# The environment before any fixture points VIDPRED_HOME/VIDPRED_CACHE at temp folders.
_ENV_AT_START = dict(os.environ)


def _listing(folder: Path) -> dict[str, int]:
    """Returns {relative path: mtime_ns} of every file below ``folder`` (empty if absent)."""
    if not folder.is_dir():
        return {}
    files = (p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="session", autouse=True)
def users_state_is_untouched():
    """Fails the session if any test wrote the user's real state or cache folders
    (~/.local/state/vidpred, ~/.cache/vidpred, or their XDG/VIDPRED_* equivalents)."""
    env, home = _ENV_AT_START, Path.home()
    state = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "vidpred"
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "vidpred"
    folders = [Path(env.get("VIDPRED_HOME") or state), Path(env.get("VIDPRED_CACHE") or cache)]
    before = [_listing(f) for f in folders]
    yield
    for folder, listing in zip(folders, before, strict=True):
        assert _listing(folder) == listing, f"the tests changed {folder}"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory, monkeypatch):
    """Keeps `vidpred train`'s 'newest checkpoint' record and the decode cache out of the
    user's home; each test starts with an empty cache."""
    monkeypatch.setenv("VIDPRED_HOME", str(tmp_path_factory.mktemp("vidpred_home")))
    monkeypatch.setenv("VIDPRED_CACHE", str(tmp_path_factory.mktemp("vidpred_cache")))


@pytest.fixture(scope="session")
def square_folder(tmp_path_factory) -> Path:
    """A folder with two lossless moving-square videos (32x32, 40 frames)."""
    folder = tmp_path_factory.mktemp("squares")
    write_lossless(folder / "a.avi", moving_square(40, speed=2))
    write_lossless(folder / "sub" / "b.avi", moving_square(40, speed=3, color=(40, 200, 90)))
    return folder


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, square_folder) -> Path:
    """A small model trained for a few steps on the square folder (full 32x32 frames)."""
    from vidpred.data import DataConfig, WindowDataset, load_videos
    from vidpred.model import ModelConfig
    from vidpred.training import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "squares.pt"
    model_config = ModelConfig(frames=4, width=16, depth=2)
    data_config = DataConfig(size=32, val_fraction=0.2, crop=0)
    videos = load_videos(square_folder, data_config.size, model_config.history + 1)
    data = WindowDataset(videos, model_config.input_offsets(), data_config)
    train(
        data,
        model_config,
        data_config,
        TrainConfig(steps=20, batch_size=4, lr=3e-3, warmup_steps=5, device="cpu"),
        out,
    )
    return out


@pytest.fixture
def in_tmp_path(tmp_path, monkeypatch):
    """Commands without --out make weights/ or renders/ in the working folder: use a temp one.
    (Modules that run the CLI in-process use it with ``pytestmark``.)"""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def one_thread():
    with one_torch_thread():
        yield

import math

import numpy as np
import torch
from helpers import frame_index_video, write_lossless

from vidpred.data import DataConfig, WindowDataset, load_videos, stack_window, validation_start


def _index_of(channels: torch.Tensor) -> int:
    """Reads a frame index back from a frame_index_video frame (red = 10 * t)."""
    return round(float(channels[0].mean()) * 255 / 10)


def test_stacking_is_oldest_to_newest_rgb(tmp_path):
    path = write_lossless(tmp_path / "idx.avi", frame_index_video(12))
    frames = torch.from_numpy(load_videos(path, 16, 5)[0].frames)
    x = stack_window(frames, target=9, offsets=[-4, -3, -2, -1])  # (12, H, W)
    assert x.shape == (12, 16, 24) and x.dtype == torch.float32
    assert [_index_of(x[3 * i : 3 * i + 3]) for i in range(4)] == [5, 6, 7, 8]
    # Channel order within a frame is R, G, B: blue holds 255 - 10 t.
    assert math.isclose(float(x[2].mean()), (255 - 50) / 255, abs_tol=1e-6)


def test_no_training_window_reaches_validation(tmp_path):
    path = write_lossless(tmp_path / "idx.avi", frame_index_video(25))
    videos = load_videos(path, 16, 5)
    config = DataConfig(size=16, val_fraction=0.2, crop=0)
    data = WindowDataset(videos, [-4, -3, -2, -1], config)
    boundary = validation_start(25, 0.2)
    assert boundary == 20
    assert all(t < boundary for _, t in data.train_windows)
    assert all(t >= boundary for _, t in data.val_windows)
    assert len(data.train_windows) + len(data.val_windows) == 25 - 4
    # Every frame a training batch touches, target included, is before the boundary.
    plan = data.epoch_plan(seed=0, epoch=0)
    for step in range(data.steps_per_epoch(2)):
        inputs, targets = data.train_batch(plan, step, 2)
        for sample in torch.cat([inputs, targets], 1):
            indices = [_index_of(sample[i : i + 3]) for i in range(0, sample.shape[0], 3)]
            assert max(indices) < boundary


def test_val_fraction_zero_trains_on_everything(tmp_path):
    path = write_lossless(tmp_path / "idx.avi", frame_index_video(12))
    data = WindowDataset(load_videos(path, 16, 5), [-4, -3, -2, -1], DataConfig(16, 0.0, 0))
    assert len(data.train_windows) == 8 and data.val_windows == []


def test_crops_and_flips_keep_frames_aligned(square_folder):
    videos = load_videos(square_folder, 32, 5)
    data = WindowDataset(videos, [-4, -3, -2, -1], DataConfig(32, 0.2, 16))
    plan = data.epoch_plan(seed=1, epoch=0)
    inputs, targets = data.train_batch(plan, 0, 4)
    assert inputs.shape == (4, 12, 16, 16) and targets.shape == (4, 3, 16, 16)
    assert 0.0 <= float(inputs.min()) and float(inputs.max()) <= 1.0
    # The same (seed, epoch) gives the same batches: resumable data order.
    again = data.train_batch(data.epoch_plan(seed=1, epoch=0), 0, 4)
    assert torch.equal(again[0], inputs) and torch.equal(again[1], targets)
    other = data.train_batch(data.epoch_plan(seed=1, epoch=1), 0, 4)
    assert not torch.equal(other[0], inputs)


def test_crop_larger_than_frame_is_a_clear_error(square_folder):
    import pytest

    from vidpred.errors import VidpredError

    videos = load_videos(square_folder, 32, 5)
    with pytest.raises(VidpredError, match="^crop 64") as raised:
        WindowDataset(videos, [-4, -3, -2, -1], DataConfig(32, 0.2, 64))
    assert raised.value.as_options().startswith("--crop 64 is larger")
    np.testing.assert_equal(len(videos), 2)


def test_period_and_trend_windows_stay_inside_the_video_and_before_validation(tmp_path):
    from vidpred.model import ModelConfig

    path = write_lossless(tmp_path / "idx.avi", frame_index_video(25))
    config = ModelConfig(
        frames=2, period=3, period_frames=2, trend=5, trend_frames=2, base_flow="dis"
    )
    offsets = config.input_offsets()  # [-10, -5, -6, -3, -2, -1]
    data = WindowDataset(load_videos(path, 16, 5), offsets, DataConfig(16, 0.2, 0))
    boundary = validation_start(25, 0.2)
    # No window reaches before frame 0: the first target is the deepest offset.
    assert min(t for _, t in data.train_windows) == config.history == 10
    assert all(t + min(offsets) >= 0 for _, t in data.train_windows + data.val_windows)
    plan = data.epoch_plan(seed=0, epoch=0)
    for step in range(data.steps_per_epoch(2)):
        inputs, targets = data.train_batch(plan, step, 2)
        for x, y in zip(inputs, targets, strict=True):
            indices = [_index_of(x[i : i + 3]) for i in range(0, x.shape[0], 3)]
            target = _index_of(y)
            assert target < boundary
            assert indices == [target + o for o in offsets]  # exactly the configured frames

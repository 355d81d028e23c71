"""Resource caps and crafted inputs: refused up front, in one line, before anything big is
allocated (issue 12, items 4, 7, 8 and 10, and the unclear option messages)."""

import io
import math
import os
import re
import struct
import weakref
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import cli, moving_square, usage_error, write_lossless

from vidpred.checkpoint import load_checkpoint, save_checkpoint
from vidpred.data import DataConfig, WindowDataset, load_videos
from vidpred.errors import CheckpointError, VideoError
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.video import MAX_FRAME_PIXELS, max_decoded_bytes, read_video

# A model small enough that one training step takes a fraction of a second.
TINY_MODEL = ["--width", "4", "--depth", "1", "--head", "residual"]


pytestmark = pytest.mark.usefixtures("in_tmp_path")


def raw(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def crafted(tmp_path: Path, trained_checkpoint: Path, name: str, change) -> Path:
    """Writes a copy of the trained checkpoint with ``change(dict)`` applied."""
    ckpt = raw(trained_checkpoint)
    change(ckpt)
    torch.save(ckpt, tmp_path / name)
    return tmp_path / name


def window_frames(frames: np.ndarray, t: int, offsets: list[int]) -> np.ndarray:
    """uint8 (N+1, 3, H, W): window t's input frames, oldest first, then its target."""
    return frames[[t + o for o in offsets] + [t]].transpose(0, 3, 1, 2)


# --- item 4: a batch larger than the training windows ------------------------------------


@pytest.mark.parametrize("frames, batch", [(8, None), (40, 32)])
def test_training_on_fewer_windows_than_a_batch_works_and_says_so(
    tmp_path, capsys, caplog, frames, batch
):
    """A clip of 8 frames with the default batch (2 training windows), and --batch-size 32
    on 40 frames (28 windows), crashed with an IndexError."""
    clip = write_lossless(tmp_path / "short.avi", moving_square(frames))
    out = tmp_path / "m.pt"
    extra = ["--batch-size", batch] if batch else []
    code, lines = cli(capsys, "train", clip, "--steps", "1", "--out", out, *TINY_MODEL, *extra)
    assert code == 0, lines
    assert out.is_file()
    assert "training windows for --batch-size" in caplog.text
    assert "each batch repeats windows" in caplog.text


@pytest.mark.parametrize("crop", [0, 16])
@pytest.mark.parametrize("seed", range(4))
def test_every_row_of_a_batch_is_a_real_window(tmp_path, crop, seed):
    """With 5 training windows and batches of 12, every row is one of the windows (a crop of
    it, maybe mirrored), never uninitialised memory; ranks split the same global batch."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    path = write_lossless(tmp_path / "noise.avi", frames)
    config = DataConfig(size=32, val_fraction=0.0, crop=crop)
    offsets = ModelConfig(frames=2, head="residual").input_offsets()
    data = WindowDataset(load_videos(path, 32, 3, cache=False), offsets, config)
    assert len(data.train_windows) == 5
    plan = data.epoch_plan(seed, 0)
    inputs, targets = data.train_batch_uint8(plan, 0, 12)
    rows = np.concatenate(
        [inputs.numpy().reshape(12, len(offsets), 3, *inputs.shape[-2:]), targets.numpy()[:, None]],
        1,
    )  # (12, N+1, 3, c, c)
    side = crop or 32
    seen = set()
    for row in rows:
        found = None
        for _, t in data.train_windows:
            whole = window_frames(frames, t, offsets)
            for y in range(32 - side + 1):
                for x in range(32 - side + 1):
                    box = whole[..., y : y + side, x : x + side]
                    for mirrored in (False, True):
                        if np.array_equal(row, box[..., ::-1] if mirrored else box):
                            found = (t, y, x, mirrored)
        assert found is not None, "a batch row is not a real window"
        seen.add(found)
    assert len({t for t, *_ in seen}) == 5  # each window is used
    assert len(seen) > 5  # repeats bring other crops or flips, not only copies
    halves = [data.train_batch_uint8(plan, 0, 12, rank=r, world_size=2)[0] for r in range(2)]
    assert torch.equal(torch.cat(halves), inputs)


def test_a_batch_too_big_for_memory_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """Checked against a 10 MB cap here (1 GB in use), so that code without the check fails
    this test by training, not by trying to allocate hundreds of GB."""
    import vidpred.data

    monkeypatch.setattr(vidpred.data, "MAX_BATCH_BYTES", 10**7)
    clip = write_lossless(tmp_path / "clip.avi", moving_square(40))
    out = tmp_path / "m.pt"
    code, lines = cli(
        capsys, "train", clip, "--steps", "1", "--out", out, "--batch-size", "1000", *TINY_MODEL
    )
    assert code == 1 and len(lines) == 1, lines
    assert lines[0] == (
        "vidpred: error: --batch-size 1000: 1000 windows of 5 frames at 64x64 would take "
        "0.1 GB (at most 0.01 GB a batch); use a smaller --batch-size or --crop"
    )
    assert not out.exists()
    monkeypatch.setattr(vidpred.data, "MAX_BATCH_BYTES", 10**9)
    assert (
        cli(
            capsys, "train", clip, "--steps", "1", "--out", out, "--batch-size", "1000", *TINY_MODEL
        )[0]
        == 0
    )


# --- item 7: pixels per frame, decoded bytes, checkpoint fields, --extend ----------------


def test_an_extreme_aspect_ratio_is_refused_before_decoding(tmp_path, capsys, trained_checkpoint):
    """2x4000 frames at --size 96 would become 96x192000 (55 MB a frame from a 37 KB file)."""
    clip = write_lossless(tmp_path / "thin.avi", np.full((6, 2, 4000, 3), 90, np.uint8))
    with pytest.raises(VideoError, match=r"thin.avi: .*192000x96 .*16.8 Mpx per frame"):
        read_video(clip, 96, max_frames=1)
    assert read_video(clip, 8).frames.shape == (6, 8, 16000, 3)  # a smaller --size works
    code, lines = cli(capsys, "render", clip, "--weights", trained_checkpoint, "--size", "96")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"vidpred: error: {clip}: its 4000x2 frames become 192000x96")
    assert "use a smaller --size" in lines[0]
    assert MAX_FRAME_PIXELS == 4096 * 4096


def test_size_4096_on_a_small_clip_is_refused_not_killed(tmp_path, capsys):
    """--size 4096 on a 32x48 clip upscaled every frame to 4096x6144 until the OOM killer
    struck."""
    clip = write_lossless(tmp_path / "small.avi", moving_square(8, 32, 48))
    with pytest.raises(VideoError, match=r"small.avi: .* 6144x4096 at working size 4096"):
        read_video(clip, 4096, max_frames=1)
    code, lines = cli(
        capsys,
        "train",
        clip,
        "--size",
        "4096",
        "--steps",
        "1",
        "--out",
        tmp_path / "m.pt",
        *TINY_MODEL,
    )
    assert code == 1 and len(lines) == 1, lines
    assert "small.avi: its 48x32 frames become 6144x4096 at working size 4096" in lines[0]


def test_decoded_bytes_are_capped_from_the_container_claim(
    tmp_path, capsys, monkeypatch, trained_checkpoint
):
    """The frame count times the working size is checked before decoding: 40 frames at
    1024x1024 (126 MB) against a cap of 0.1 GB."""
    clip = write_lossless(tmp_path / "square.avi", moving_square(40))
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", "0.1")
    assert max_decoded_bytes() == 10**8
    code, lines = cli(capsys, "render", clip, "--weights", trained_checkpoint, "--size", "1024")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(
        f"vidpred: error: {clip}: its 40 frames of 1024x1024 would take 0.1 GB decoded"
    )
    assert "VIDPRED_MAX_DECODED_GB" in lines[0]
    assert read_video(clip, 32).num_frames == 40  # the same clip at a small size is fine


def test_a_container_that_understates_its_frames_is_stopped_at_the_cap(tmp_path, monkeypatch):
    clip = write_lossless(tmp_path / "liar.avi", moving_square(40))
    data = bytearray(clip.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    data[avih + 24 : avih + 28] = struct.pack("<I", 2)  # dwTotalFrames
    data[strh + 40 : strh + 44] = struct.pack("<I", 2)  # dwLength
    clip.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT) == 2  # the lie is in place
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", str(10 * 256 * 256 * 3 / 1e9))
    with pytest.raises(VideoError, match="liar.avi: more than 10 frames of 256x256"):
        read_video(clip, 256)


def test_no_cache_videos_together_must_fit_the_cap(tmp_path, capsys, monkeypatch):
    """--no-cache holds every video in memory: each fitting the cap alone let a folder of
    them take any multiple of it. The cached run maps them and is not refused."""
    for name in ("a.avi", "b.avi", "c.avi"):
        write_lossless(tmp_path / "v" / name, moving_square(40, 64, 64))  # 0.49 MB each
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", "0.0012")
    args = ["train", tmp_path / "v", "--size", "64", "--steps", "1", *TINY_MODEL]
    code, lines = cli(capsys, *args, "--no-cache", "--out", tmp_path / "n.pt")
    assert code == 1 and len(lines) == 1, lines
    assert (
        "c.avi: its 40 frames of 64x64 would take 0.0 GB decoded on top of the 0.0 GB" in lines[0]
    )
    assert "without --no-cache the videos are memory-mapped" in lines[0]
    assert cli(capsys, *args, "--out", tmp_path / "c.pt")[0] == 0


def test_the_default_decode_cap_is_half_the_memory(monkeypatch):
    monkeypatch.delenv("VIDPRED_MAX_DECODED_GB", raising=False)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert max_decoded_bytes() == int(memory * 0.5)
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", "nan")
    with pytest.raises(Exception, match="VIDPRED_MAX_DECODED_GB must be a positive number"):
        max_decoded_bytes()


@pytest.mark.parametrize(
    "section, field, value",
    [
        ("data_config", "size", 100_000),
        ("model_config", "width", 200_000),
        ("model_config", "depth", 1001),
        ("data_config", "crop", -4),
    ],
)
def test_checkpoint_sizes_out_of_range_are_refused_naming_the_field(
    tmp_path, capsys, trained_checkpoint, section, field, value
):
    """size=100000 gave a cv2 allocation traceback, width=200000 a RuntimeError."""
    bad = crafted(
        tmp_path, trained_checkpoint, "big.pt", lambda c: c[section].update({field: value})
    )
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    code, lines = cli(capsys, "render", clip, "--weights", bad)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"vidpred: error: {bad}: {section}.{field} must be ")
    assert str(value) in lines[0]


def test_weights_that_do_not_fit_a_large_configuration_are_refused_before_building_it(
    tmp_path, trained_checkpoint
):
    """A configuration within range but far larger than its stored weights (4096 channels:
    7 GB of parameters) is compared on the meta device, never built."""
    bad = crafted(
        tmp_path,
        trained_checkpoint,
        "wide.pt",
        lambda c: c["model_config"].update(width=4096, depth=6),
    )
    with pytest.raises(CheckpointError, match="weights do not match the model configuration"):
        load_checkpoint(bad)


def test_views_that_claim_a_large_model_from_a_tiny_file_are_refused(tmp_path, trained_checkpoint):
    """Weights of the right shapes but stored as zero-stride views of one number: a few KB
    that would configure (and make vidpred allocate) a 1.7 GB model."""

    def inflate(c):
        c["model_config"].update(width=2048, depth=6)
        with torch.device("meta"):
            shapes = STResNet(ModelConfig(**c["model_config"])).state_dict()
        one = torch.zeros(1)
        c["model"] = {k: one.expand(v.shape) if v.ndim else one[0] for k, v in shapes.items()}
        del c["train_model"], c["optimizer"]

    bad = crafted(tmp_path, trained_checkpoint, "views.pt", inflate)
    assert bad.stat().st_size < 64 * 1024
    with pytest.raises(CheckpointError, match="views.pt: 'model' holds tensors whose elements"):
        load_checkpoint(bad)

    def alias(c):  # every tensor of a name-shape group is the same storage
        state = c["model"]
        for k, v in list(state.items()):
            same = [t for t in state.values() if t.shape == v.shape]
            state[k] = same[0]

    with pytest.raises(CheckpointError, match="'model' holds tensors that share their data"):
        load_checkpoint(crafted(tmp_path, trained_checkpoint, "alias.pt", alias))


def test_a_batch_or_horizon_too_big_for_memory_is_refused_before_the_model_runs(
    tmp_path, capsys, monkeypatch, trained_checkpoint
):
    """Every frame of a long clip in one model call, or a rollout of thousands of steps, is
    refused from an estimate before anything is allocated (here against a 0.5 GB cap)."""
    clip = write_lossless(tmp_path / "clip.avi", moving_square(40, 256, 256))
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", "0.5")
    code, lines = cli(
        capsys,
        "render",
        clip,
        "--weights",
        trained_checkpoint,
        "--size",
        "256",
        "--batch-size",
        "100000",
        "--out",
        tmp_path / "r.mp4",
    )
    assert code == 1 and len(lines) == 1, lines
    # all 36 targets of the clip in one call (40 frames, the first 4 are the model's inputs)
    assert lines[0].startswith("vidpred: error: --batch-size 36 at 256x256 would take about")
    assert not (tmp_path / "r.mp4").exists()
    code, lines = cli(
        capsys, "eval", clip, "--weights", trained_checkpoint, "--size", "256", "--horizon", "30"
    )
    assert code == 1 and len(lines) == 1, lines
    assert "--batch-size 8 with --horizon 30 at 256x256 would take about" in lines[0]


def test_a_render_scale_too_big_for_a_frame_is_one_line_before_drawing(
    tmp_path, capsys, trained_checkpoint
):
    """--scale 1000 asked cv2 for 96000-pixel-wide panels: an allocation traceback (or the
    OOM killer) after the model had run."""
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12, 32, 32))
    code, lines = cli(
        capsys,
        "render",
        clip,
        "--weights",
        trained_checkpoint,
        "--size",
        "32",
        "--scale",
        "1000",
        "--out",
        tmp_path / "r.mp4",
    )
    assert code == 1 and len(lines) == 1, lines
    assert "3 panels of 32x32 at --scale 1000 make 96008x" in lines[0]
    assert "use a smaller --scale or --size" in lines[0]
    assert not (tmp_path / "r.mp4").exists()
    # the largest scale that fits still renders
    assert (
        cli(
            capsys,
            "render",
            clip,
            "--weights",
            trained_checkpoint,
            "--size",
            "32",
            "--scale",
            "8",
            "--out",
            tmp_path / "ok.mp4",
        )[0]
        == 0
    )


def test_a_gif_too_big_for_memory_is_refused_before_drawing(
    tmp_path, capsys, monkeypatch, trained_checkpoint
):
    """The GIF's frames are held until the end: a long render with --gif grew without bound.
    The same render without --gif streams and is not refused."""
    clip = write_lossless(tmp_path / "clip.avi", moving_square(60, 64, 64))
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", "0.03")
    args = ["render", clip, "--weights", trained_checkpoint, "--size", "64", "--scale", "4"]
    code, lines = cli(capsys, *args, "--gif", "--out", tmp_path / "g.mp4")
    assert code == 1 and len(lines) == 1, lines
    assert "a GIF of 56 frames of" in lines[0] and "drop --gif" in lines[0], lines[0]
    assert list(tmp_path.glob("g.*")) == []
    assert cli(capsys, *args, "--out", tmp_path / "r.mp4")[0] == 0


def test_extend_streams_its_predictions_instead_of_keeping_them(
    tmp_path, capsys, monkeypatch, trained_checkpoint
):
    """--extend N held every prediction until the last was made (711 MB at 300 frames in
    the issue). Now each frame is written before the next is predicted: while frames are
    written, at most a couple of the model's outputs are alive, however long the extension.

    (Counted rather than measured as RSS: the peak RSS of a process moves by hundreds of MB
    with memory pressure from other processes, which evicts its libraries' pages.)"""
    from vidpred.encoding import Mp4Writer

    alive = weakref.WeakSet()  # every model output not yet freed
    most = 0
    forward, write = Predictor.forward, Mp4Writer.write

    def counting_forward(self, inputs, flows=None):
        out = forward(self, inputs, flows)
        alive.add(out)
        return out

    def counting_write(self, frame):
        nonlocal most
        most = max(most, len(alive))
        write(self, frame)

    monkeypatch.setattr(Predictor, "forward", counting_forward)
    monkeypatch.setattr(Mp4Writer, "write", counting_write)
    clip = write_lossless(tmp_path / "clip.avi", moving_square(8))
    code, lines = cli(
        capsys,
        "render",
        clip,
        "--weights",
        trained_checkpoint,
        "--extend",
        "300",
        "--panels",
        "predicted,flow",
        "--out",
        tmp_path / "r.mp4",
    )
    assert code == 0, lines
    assert cv2.VideoCapture(str(tmp_path / "r.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 4 + 300
    assert most <= 3, f"{most} predictions held at once"


def test_extend_yields_what_a_rollout_would(trained_checkpoint):
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    frames = torch.from_numpy(moving_square(12))
    [(_, rolled)] = predictor.rollout(frames, [11], 6)
    streamed = torch.stack(list(predictor.extend(frames, 6)))
    assert torch.equal(streamed, rolled[0])


# --- item 8: a checkpoint that inflates far beyond its size -------------------------------


def _rezip_deflated(src: Path, dst: Path) -> None:
    """Copies a torch zip archive with every record deflated (streamed: little memory)."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as b:
        for info in a.infolist():
            with a.open(info) as f, b.open(info.filename, "w") as g:
                while chunk := f.read(1 << 20):
                    g.write(chunk)


def test_a_compression_bomb_is_refused_before_it_inflates(tmp_path, capsys, trained_checkpoint):
    """A checkpoint whose extra record deflates from about 64 KB to 64 MB (the issue's was
    1 MB to 1 GiB) is refused from the zip directory: torch never inflates it."""
    plain = crafted(
        tmp_path,
        trained_checkpoint,
        "plain.pt",
        lambda c: c.update(padding=torch.zeros(16 * 2**20)),
    )
    bomb = tmp_path / "bomb.pt"
    _rezip_deflated(plain, bomb)
    plain.unlink()
    assert bomb.stat().st_size < 2**20
    assert raw(bomb)["padding"].numel() == 16 * 2**20  # torch would inflate it all
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    code, lines = cli(capsys, "render", clip, "--weights", bomb, "--out", tmp_path / "r.mp4")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"vidpred: error: {bomb}: refused to load: its records would ")
    assert re.search(r"inflate to 64\.\d MiB from a \d+\.\d KiB file", lines[0]), lines[0]
    assert "compression bomb" in lines[0]
    assert not (tmp_path / "r.mp4").exists()


def test_a_deflated_but_honest_checkpoint_still_loads(tmp_path, trained_checkpoint):
    """Weights barely compress: a checkpoint a zip tool deflated stays within the cap."""
    honest = tmp_path / "honest.pt"
    _rezip_deflated(trained_checkpoint, honest)
    assert load_checkpoint(honest).step == raw(trained_checkpoint)["step"]


def test_a_record_claiming_a_huge_size_is_refused_from_the_directory(tmp_path):
    """The claim alone is refused: no record is read (this one could not be inflated)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("x/data.pkl", b"\x80\x02}q\x00.")
    data = bytearray(buffer.getvalue())
    central = data.find(b"PK\x01\x02")
    data[central + 24 : central + 28] = struct.pack("<I", 2**32 - 1)  # uncompressed size
    (tmp_path / "claim.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="would inflate to 4.0 GiB from a 1[0-9]{2} bytes"):
        load_checkpoint(tmp_path / "claim.pt")


# --- item 10: crafted training state on --resume ------------------------------------------


def test_nan_epochs_are_refused_not_trained_forever(tmp_path, trained_checkpoint):
    def nan_epochs(c):
        c["train_config"].update(epochs=math.nan, steps=None, time_limit=None)

    bad = crafted(tmp_path, trained_checkpoint, "nan.pt", nan_epochs)
    with pytest.raises(
        CheckpointError,
        match="nan.pt: train_config.epochs must be a positive integer or None, got nan",
    ):
        load_checkpoint(bad)


CRAFTED = [
    (("model_config", "frames"), 4.5, "model_config.frames"),
    (("train_config", "seed"), "x", "train_config.seed"),
    (("train_config", "batch_size"), 0, "train_config.batch_size"),
    (("train_config", "lr"), math.inf, "train_config.lr"),
    (("train_config", "loss"), "l3", "train_config.loss"),
    (("best",), [1], "'best'"),
    (("best",), {"val_psnr": "high"}, "'best'"),
    (("history",), [1, 2], "'history'"),
    (("sources",), [1], "'sources'"),
    (("schedule",), [], "'schedule'"),
    (("schedule", "elapsed_s"), -1.0, "schedule.elapsed_s"),
    (("step",), -3, "checkpoint.step"),
    (("epoch",), 2.5, "checkpoint.epoch"),
    (("model_config", "stem"), "yes", "model_config.stem"),
    (("data_config", "val_fraction"), math.nan, "data_config.val_fraction"),
    (("train_config", "epochs"), 10**400, "train_config.epochs"),  # too big for a float
    (("model_config", "c" * 100_000), 1, "'model_config' has unknown fields"),
]


@pytest.mark.parametrize(
    "where, value, named",
    CRAFTED,
    ids=[".".join(w[:12] for w in where) + "=" + repr(v)[:12] for where, v, _ in CRAFTED],
)
def test_resume_from_a_crafted_checkpoint_names_the_field(
    tmp_path, capsys, trained_checkpoint, square_folder, where, value, named
):
    """frames=4.5, seed="x" and best=[1] gave tracebacks; now every field is checked on load."""

    def change(c):
        if len(where) == 1:
            c[where[0]] = value
        else:
            c[where[0]][where[1]] = value

    bad = crafted(tmp_path, trained_checkpoint, "crafted.pt", change)
    before = bad.read_bytes()
    code, lines = cli(
        capsys, "train", "--resume", bad, square_folder, "--steps", "30", "--out", tmp_path / "m.pt"
    )
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"vidpred: error: {bad}: {named}"), lines[0]
    assert len(lines[0]) < 400  # a long stored value is shown shortened
    assert bad.read_bytes() == before and not (tmp_path / "m.pt").exists()


def test_optimizer_moments_of_the_wrong_shape_are_refused(tmp_path, trained_checkpoint):
    def wrong(c):
        state = c["optimizer"]["state"]
        first = next(iter(state))
        state[first]["exp_avg"] = torch.zeros(1)

    with pytest.raises(CheckpointError, match="optimizer state does not fit the model"):
        load_checkpoint(crafted(tmp_path, trained_checkpoint, "opt.pt", wrong))
    bad = crafted(
        tmp_path,
        trained_checkpoint,
        "betas.pt",
        lambda c: c["optimizer"]["param_groups"][0].update(betas="x"),
    )
    with pytest.raises(CheckpointError, match="optimizer setting 'betas'"):
        load_checkpoint(bad)


def test_checkpoints_that_vidpred_writes_pass_every_check(tmp_path, trained_checkpoint):
    """The checks refuse nothing vidpred writes: the shipped weights, a trained and resumable
    checkpoint, and an inference-only copy."""
    from vidpred.checkpoint import save_for_inference
    from vidpred.paths import DEFAULT_WEIGHTS

    assert load_checkpoint(DEFAULT_WEIGHTS).model_config.width == 64
    ckpt = load_checkpoint(trained_checkpoint)
    assert ckpt.train_config["seed"] == 0 and ckpt.optimizer
    save_for_inference(trained_checkpoint, tmp_path / "small.pt")
    assert load_checkpoint(tmp_path / "small.pt").optimizer is None
    payload = {k: v for k, v in raw(trained_checkpoint).items() if k not in ("format", "version")}
    payload["train_config"]["epochs"] = None  # time-limited runs store None
    payload["train_config"]["time_limit"] = 0.5
    save_checkpoint(tmp_path / "timed.pt", payload)
    assert load_checkpoint(tmp_path / "timed.pt").train_config["time_limit"] == 0.5


# --- unclear option messages ----------------------------------------------------------------


def test_train_seed_beyond_64_bits_is_an_option_error(capsys):
    line = usage_error(capsys, "train", "clips", "--seed", "18446744073709551616")
    assert line == (
        "vidpred train: error: argument --seed: must be an integer from 0 to 4294967295, "
        "got 18446744073709551616"
    )


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--width", "200000", "must be an integer from 1 to 4096"),
        ("--depth", "100000", "must be an integer from 0 to 1000"),
        ("--frames", "5000", "must be an integer from 1 to 1000"),
        ("--frames", "0", "must be an integer from 1 to 1000"),
        ("--period", "10000000", "must be an integer from 0 to 100000"),
    ],
)
def test_train_model_options_stay_within_what_a_checkpoint_may_hold(capsys, option, value, message):
    """--width 200000 built a model of 1.4 TB of weights (an allocation traceback); the CLI
    now takes only what load_checkpoint accepts back."""
    line = usage_error(capsys, "train", "clips", option, value)
    assert line == f"vidpred train: error: argument {option}: {message}, got {value}"


@pytest.mark.parametrize(
    "args, named",
    [
        (["--fps", "1e-300"], "argument --fps: must be 0.5 to 1000 frames per second, got 1e-300"),
        (["--fps", "nan"], "argument --fps: must be 0.5 to 1000"),
        (["--seed", "-5"], "argument --seed: must be an integer from 0 to 4294967295, got -5"),
        (["--height", "31"], "argument --height: must be an even number of pixels from 16 to 4096"),
        (["--width", "100000"], "argument --width: must be an even number of pixels"),
        (["--count", "1000000000"], "argument --count: must be 1 to 100000"),
    ],
)
def test_generate_options_are_checked_by_argparse(tmp_path, capsys, args, named):
    line = usage_error(capsys, "generate", tmp_path / "gen", *args)
    assert line.startswith("vidpred generate: error: ") and named in line
    assert not (tmp_path / "gen").exists()


def test_generate_refuses_a_clip_too_big_for_memory(tmp_path, capsys):
    code, lines = cli(
        capsys,
        "generate",
        tmp_path / "gen",
        "--length",
        "100000",
        "--height",
        "1024",
        "--width",
        "1024",
    )
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(
        "vidpred: error: --length 100000 at 1024x1024 would take 314.6 GB in memory per clip"
    )
    assert not list((tmp_path / "gen").glob("*.mp4"))

"""Training and validation windows over a folder of videos.

A window is (video, target index t). Its input is the frames at t + offset for the model's
input offsets (closeness: t-K .. t-1), stacked as channels oldest first; its target is frame t.
A training window of an unrolled run (``unroll`` U > 1) has U targets, t .. t+U-1: the model
predicts them one after another from its own predictions (``vidpred.training``).

Validation is held out in time: for a video of T frames, targets with index
``>= floor(T * (1 - val_fraction))`` are validation and are never trained on. Windows whose
inputs would fall before frame 0 are not formed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .cache import read_flows_cached, read_video_cached, release_pages
from .errors import SettingError, VideoError, VidpredError, shown
from .options import check_bounds, option
from .video import DecodeCapError, Video, gather_videos, read_video

log = logging.getLogger(__name__)

# A training batch's uint8 frames may take at most this much: 4x that as float32, and the
# model's activations tens of times more. Above it a typo in --batch-size is refused up front
# instead of ending in an out-of-memory kill.
MAX_BATCH_BYTES = 10**9

# With fewer training windows than a batch, the epoch's plan is read round and round; each
# lap past the first shifts the crop position by these fractions (the golden ratio's, which
# spread successive laps evenly) and mirrors the flip, so a repeated window brings a new crop.
LAP_SHIFT = (0.6180339887498949, 0.3819660112501051)


MIN_SIZE = 8  # the smallest working size, px (and the smallest --size)
# Bytes of memory-mapped frames and flows training may read between drops of their resident
# pages (WindowDataset.release_interval).
RESIDENT_PAGE_BUDGET = 512 * 2**20
# The largest --size: above any camera's shorter side (4K is 2160), it stops a typo from
# upscaling every frame into an out-of-memory kill.
MAX_SIZE = 4096


@dataclass(frozen=True)
class DataConfig:
    """How videos become samples; stored in every checkpoint."""

    size: int = option(
        96, "shorter side of the working size, px", low=MIN_SIZE, high=MAX_SIZE, unit=" px"
    )
    val_fraction: float = option(
        0.2, "last fraction of each video held out for validation", low=0, high=1, high_open=True
    )
    crop: int = option(
        64,
        "side of the square random training crops, px; 0 = full frames (the default "
        "shrinks to fit a smaller --size)",
        low=0,
        high=MAX_SIZE,
        multiple=4,
    )

    def __post_init__(self):
        check_bounds(self)

    def to_dict(self) -> dict:
        return asdict(self)


def default_crop(size: int) -> int:
    """Returns the default crop fitted to working ``size``: DataConfig's default crop, or the
    frames' shorter side at that size where that is smaller (what --crop's help promises)."""
    from .video import working_size

    return min(DataConfig().crop, working_size(size, size, size)[0])


def validation_start(num_frames: int, val_fraction: float) -> int:
    """Returns the first validation target index of a video of ``num_frames`` frames."""
    return math.floor(num_frames * (1.0 - val_fraction))


def load_videos(
    path: str | Path | list,
    size: int,
    min_frames: int,
    *,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> list[Video]:
    """Returns the readable videos at ``path`` (a file, a folder, or a list of them).

    Videos that cannot be read or hold fewer than ``min_frames`` frames are skipped with a
    warning that names them; a file named twice (or also found in a folder given) is used
    once. With ``cache`` (the default) each video is decoded once per working size into the
    decode cache (see ``vidpred.cache``) and its frames are memory-mapped from there: only
    the pages a batch touches are read, so a folder larger than memory loads. Without it, the
    frames are decoded into memory.

    Raises:
        VideoError: nothing usable was found.
        DecodeCapError: without ``cache``, the videos together would take more memory
            decoded than the cap (``vidpred.video.max_decoded_bytes``).
    """
    paths = gather_videos(path if isinstance(path, list) else [path])
    videos, errors, short = [], [], 0
    held = 0  # bytes of the uncached videos decoded so far: together they must fit the cap
    for p in paths:
        try:
            if cache:
                video = read_video_cached(p, size, cache_dir)
            else:
                video = read_video(p, size, held_bytes=held)
        except VideoError as e:
            if len(paths) == 1 or (held and isinstance(e, DecodeCapError)):
                raise  # one video: its own reason is the error; the total: no use going on
            log.warning("skipping %s", e)
            errors.append(e)
            continue
        if video.num_frames < min_frames:
            if len(paths) == 1:
                raise VideoError(
                    f"{shown(p)}: {video.num_frames} frames; the model needs at least {min_frames}"
                )
            log.warning(
                "skipping %s: %d frames, needs at least %d", shown(p), video.num_frames, min_frames
            )
            short += 1
            continue
        videos.append(video)
        held += 0 if cache else video.frames.nbytes
    if not videos:
        where = ", ".join(shown(p) for p in (path if isinstance(path, list) else [path]))
        if not errors:
            raise VideoError(f"{where}: no usable video (each needs at least {min_frames} frames)")
        raise VideoError(
            f"{where}: no usable video: {len(errors)} could not be used and {short} "
            f"had fewer than {min_frames} frames (the warnings above say which and why)"
            if short
            else f"{where}: no usable video: none of the {len(errors)} could be used "
            "(the warnings above say why)"
        )
    return videos


def load_flows(
    videos: list[Video], size: int, *, cache: bool = True, cache_dir: str | Path | None = None
) -> list[np.ndarray]:
    """Returns each video's base flows float32 (T, H, W, 2) (``vidpred.flow.video_flows``),
    through the decode cache unless ``cache`` is off: a second run computes none."""
    if not cache:
        from .flow import video_flows

        return [video_flows(v.frames) for v in videos]
    return [read_flows_cached(v, size, cache_dir) for v in videos]


def stack_window(frames: torch.Tensor, target: int, offsets: list[int]) -> torch.Tensor:
    """Returns float32 [0, 1] (3N, H, W) model input for ``target`` from uint8 RGB (T, H, W, 3)."""
    return stack_windows(frames, [target], offsets)[0]


def stack_windows(frames: torch.Tensor, targets: list[int], offsets: list[int]) -> torch.Tensor:
    """Returns float32 [0, 1] (B, 3N, H, W) model inputs for ``targets`` from uint8 RGB
    (T, H, W, 3) frames."""
    index = torch.tensor([[t + o for o in offsets] for t in targets], dtype=torch.long)
    return windows_to_inputs(frames[index])


def windows_to_inputs(windows: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (B, N, H, W, 3) windows -> float32 [0, 1] (B, 3N, H, W) model inputs, frame
    k's RGB at channels 3k..3k+2 (oldest first)."""
    b, n, h, w, _ = windows.shape
    return windows.permute(0, 1, 4, 2, 3).reshape(b, n * 3, h, w).float().div_(255.0)


def frames_to_tensor(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 RGB (T, H, W, 3) -> float32 [0, 1] (T, 3, H, W)."""
    frames = torch.as_tensor(frames)
    return frames.permute(0, 3, 1, 2).float().div_(255.0)


class WindowDataset:
    """All windows of a set of videos, split in time into training and validation.

    Batches are built here directly (not through a DataLoader): every epoch's order, crop
    positions and flips come from a generator seeded with (seed, epoch), so a resumed run
    sees exactly the batches an uninterrupted run would have seen.
    """

    def __init__(
        self,
        videos: list[Video],
        offsets: list[int],
        config: DataConfig,
        flows: list[np.ndarray] | None = None,
        *,
        unroll: int = 1,
    ):
        """``unroll``: targets per training window (TrainConfig.unroll); validation windows
        always have one."""
        if unroll > 1 and offsets != list(range(-len(offsets), 0)):
            # Step k's inputs are then frames t+k-K .. t+k-1: the real ones are all among
            # the window's inputs. A period or trend branch would need frames none loads.
            raise SettingError(
                lambda n: f"{n('unroll')} needs a model without {n('period')} and {n('trend')}"
            )
        self.videos = videos
        self.offsets = offsets
        self.config = config
        self.unroll = unroll
        self.history = -min(offsets)
        # uint8 RGB (T, H, W, 3) per video; uint8 keeps memory at a quarter of float32.
        self.frames = [torch.from_numpy(v.frames) for v in videos]
        # float32 (T, H, W, 2) per video, entry t the base flow for target t
        # (vidpred.flow.video_flows); None until a model that starts from it asks.
        self.flows = flows
        self.train_windows: list[tuple[int, int]] = []
        self.val_windows: list[tuple[int, int]] = []
        self._warned_repeats = False
        for v, video in enumerate(videos):
            boundary = validation_start(video.num_frames, config.val_fraction)
            for t in range(self.history, video.num_frames):
                if t >= boundary:
                    self.val_windows.append((v, t))
                elif t + unroll <= boundary:  # all its targets before validation's first
                    self.train_windows.append((v, t))
        if not self.train_windows:
            raise SettingError(
                lambda n: (
                    "no training windows: the videos are too short for "
                    + "/".join(
                        n(f) for f in ["frames", "period", "trend"] + ["unroll"] * (unroll > 1)
                    )
                    + f" with this {n('val_fraction')}"
                )
            )
        sizes = sorted({tuple(f.shape[1:3]) for f in self.frames})
        if not config.crop and len(sizes) > 1:
            # Full frames of different sizes cannot share a batch.
            listed = ", ".join(f"{h}x{w}" for h, w in sizes)
            raise VidpredError(
                f"the videos have different working sizes ({listed}); "
                "train on crops (--crop) or on videos of one aspect ratio"
            )
        if config.crop:
            smallest = min(min(f.shape[1], f.shape[2]) for f in self.frames)
            if config.crop > smallest:
                raise SettingError(
                    lambda n: (
                        f"{n('crop')} {config.crop} is larger than the smallest frame side "
                        f"({smallest} px at {n('size')} {config.size}); use {n('crop')} "
                        f"{smallest // 4 * 4} or less"
                    )
                )

    def release_pages(self) -> None:
        """Drops this process's resident pages of the memory-mapped frames and flows (see
        ``vidpred.cache.release_pages``): called every few steps and validation batches, so a
        run over a folder larger than memory holds what recent batches read, not all it read."""
        for array in [v.frames for v in self.videos] + list(self.flows or []):
            release_pages(array)

    def release_interval(self, batch_size: int) -> int:
        """Returns how many training steps may read pages before ``release_pages``: as many
        as keep what they read under RESIDENT_PAGE_BUDGET, counting whole frames (and their
        flows) for every window of a batch, within 8 to 1024 steps.

        Dropping the pages is not free (each is read back from the page cache, a minor fault):
        at --size 96 dropping them every 32 steps cost the trainer 5-10% of its speed in
        ``vidpred bench``, every 232 steps (this rule) next to nothing."""
        h, w = self.frames[0].shape[1:3]
        per_window = (len(self.offsets) + self.unroll) * h * w * 3  # inputs and the targets
        if self.flows is not None:
            per_window += h * w * 2 * 4  # float32 (dx, dy)
        return min(1024, max(8, RESIDENT_PAGE_BUDGET // (batch_size * per_window)))

    def sample_size(self) -> tuple[int, int]:
        """Returns (height, width) of a training sample: the crop, or the whole frame."""
        if self.config.crop:
            return self.config.crop, self.config.crop
        return tuple(self.frames[0].shape[1:3])

    def largest_batch(self) -> int:
        """Returns the largest global batch worth choosing: one that takes every training
        window once and stays under MAX_BATCH_BYTES."""
        h, w = self.sample_size()
        fits = MAX_BATCH_BYTES // ((len(self.offsets) + self.unroll) * 3 * h * w)
        return max(1, min(len(self.train_windows), fits))

    def steps_per_epoch(self, batch_size: int) -> int:
        """Returns the optimizer steps in one pass over the training windows (at least 1).

        With fewer training windows than ``batch_size``, each batch repeats windows (with
        other crops and flips; see ``_picks``), and a warning says so once.

        Raises:
            VidpredError: a batch would take more than MAX_BATCH_BYTES.
        """
        n = len(self.train_windows)
        h, w = self.sample_size()
        frames = len(self.offsets) + self.unroll
        needed = batch_size * frames * 3 * h * w
        if needed > MAX_BATCH_BYTES:
            raise SettingError(
                lambda n: (
                    f"{n('batch_size')} {batch_size}: {batch_size} windows of {frames} "
                    f"frames at {w}x{h} would take {needed / 1e9:.1f} GB (at most "
                    f"{MAX_BATCH_BYTES / 1e9:g} GB a batch); use a smaller {n('batch_size')} or "
                    f"{n('crop')}"
                )
            )
        if n < batch_size and not self._warned_repeats:
            self._warned_repeats = True
            log.warning(
                "only %d training window%s for --batch-size %d: each batch repeats windows "
                "(with other crops and flips)",
                n,
                "" if n == 1 else "s",
                batch_size,
            )
        return max(1, n // batch_size)

    def epoch_plan(self, seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns this epoch's (window order, crop positions in [0, 1) (N, 2), flips (N,))."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        n = len(self.train_windows)
        return (
            torch.randperm(n, generator=g),
            torch.rand(n, 2, generator=g),
            torch.rand(n, generator=g) < 0.5,
        )

    def train_batch(
        self, plan: tuple[torch.Tensor, torch.Tensor, torch.Tensor], step: int, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (inputs float32 [0, 1] (B, 3N, c, c), targets float32 [0, 1] (B, 3U, c, c))."""
        inputs, targets = self.train_batch_uint8(plan, step, batch_size)
        return inputs.float().div_(255.0), targets.float().div_(255.0)

    def ensure_flows(self) -> None:
        """Computes the base flows of every video (uncached) unless they were given."""
        if self.flows is None:
            from .flow import video_flows

            self.flows = [video_flows(f.numpy()) for f in self.frames]

    def base_flows(self, video: int, targets: list[int], pairs: int = 1) -> torch.Tensor:
        """Returns float32 (B, 2 * pairs, H, W), the model's flows of full frames for targets
        of one video (``vidpred.flow.model_flows``): read from the cached flows when there
        are some, else computed (the same values)."""
        if self.flows is None:
            from .flow import model_flows

            return model_flows(self.frames[video], targets, pairs)
        flows = self.flows[video]
        picked = [np.concatenate([flows[t - j] for j in range(pairs)], -1) for t in targets]
        return torch.from_numpy(np.stack(picked)).permute(0, 3, 1, 2)

    def _picks(
        self,
        plan: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        step: int,
        batch_size: int,
        rank: int,
        world_size: int,
    ) -> tuple[list[tuple[int, int]], list[tuple[slice, slice]], np.ndarray]:
        """Returns one rank's share of a step's windows, their crop boxes and flips.

        Global batch row r of the epoch is plan entry r mod N (N training windows). Only with
        fewer windows than a batch does r reach N: the plan is then read round and round, each
        lap with shifted crops and mirrored flips (LAP_SHIFT), so every row is a real window.
        """
        order, positions, flips = plan
        n = len(order)
        share = batch_size // world_size
        first = step * batch_size + rank * share
        if first + share <= n:  # the usual case: a slice of the plan
            picks, laps = slice(first, first + share), [0] * share
        else:
            rows = torch.arange(first, first + share)
            picks, laps = rows % n, (rows // n).tolist()
        crop = self.config.crop
        windows = [self.train_windows[i] for i in order[picks].tolist()]
        boxes = []
        for (v, _), (fy, fx), lap in zip(windows, positions[picks].tolist(), laps, strict=True):
            if crop:
                if lap:
                    fy, fx = (fy + lap * LAP_SHIFT[0]) % 1.0, (fx + lap * LAP_SHIFT[1]) % 1.0
                h, w = self.frames[v].shape[1:3]
                y, x = int(fy * (h - crop + 1)), int(fx * (w - crop + 1))
                boxes.append((slice(y, y + crop), slice(x, x + crop)))
            else:
                boxes.append((slice(None), slice(None)))
        flip = flips[picks].numpy()
        if laps[-1]:
            flip = flip ^ (np.array(laps) % 2 == 1)
        return windows, boxes, flip

    def train_batch_flows(
        self,
        plan: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        step: int,
        batch_size: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        pairs: int = 1,
    ) -> torch.Tensor:
        """Returns the model's flows float32 (b, 2 * pairs, c, c) of the batch
        ``train_batch_uint8`` returns for the same arguments (``base_flows``): the same
        crops, and flipped with them."""
        self.ensure_flows()
        windows, boxes, flip = self._picks(plan, step, batch_size, rank, world_size)
        picked = [
            np.concatenate([self.flows[v][t - j][box] for j in range(pairs)], -1)
            for (v, t), box in zip(windows, boxes, strict=True)
        ]
        out = np.stack(picked).transpose(0, 3, 1, 2).copy()  # (b, 2 * pairs, c, c)
        if flip.any():  # mirrored left-right: the field mirrors and every dx changes sign
            out[flip] = out[flip][..., ::-1]
            out[np.ix_(flip, range(0, 2 * pairs, 2))] *= -1
        return torch.from_numpy(out)

    def train_batch_uint8(
        self,
        plan: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        step: int,
        batch_size: int,
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (inputs uint8 (b, 3N, c, c), targets uint8 (b, 3U, c, c)): one rank's share;
        U = ``unroll`` targets t .. t+U-1, oldest first (U = 1: the target t alone).

        The global batch of ``step`` is samples ``step * batch_size`` onwards of the epoch's
        plan, the same whatever the number of ranks; rank r takes the r-th of ``world_size``
        equal, contiguous slices of it (b = batch_size / world_size). uint8 goes to the
        device and becomes float there: a quarter of the bytes to copy.
        """
        share = batch_size // world_size
        n, u = len(self.offsets), self.unroll
        windows, boxes, flip = self._picks(plan, step, batch_size, rank, world_size)
        inputs = targets = None
        # NumPy, not torch, for these small copies: torch runs them on its thread pool, whose
        # hand-offs cost milliseconds per copy when other processes keep the cores busy.
        for i, ((v, t), (rows, cols)) in enumerate(zip(windows, boxes, strict=True)):
            frames = self.frames[v].numpy()  # uint8 RGB (T, H, W, 3), memory-mapped when cached
            index = [t + o for o in self.offsets] + list(range(t, t + u))
            picked = frames[index, rows, cols]  # (N+U, c, c, 3): only the crop
            if inputs is None:
                h, w = picked.shape[1:3]
                inputs = np.empty((share, n, 3, h, w), dtype=np.uint8)
                targets = np.empty((share, u, 3, h, w), dtype=np.uint8)
            picked = picked.transpose(0, 3, 1, 2)  # (N+U, 3, h, w)
            inputs[i] = picked[:n]
            targets[i] = picked[n:]
        if flip.any():  # all flipped samples in one copy each
            inputs[flip] = inputs[flip][..., ::-1]
            targets[flip] = targets[flip][..., ::-1]
        return (
            torch.from_numpy(inputs).view(share, n * 3, *inputs.shape[-2:]),  # (b, 3N, h, w)
            torch.from_numpy(targets).view(share, u * 3, *targets.shape[-2:]),  # (b, 3U, h, w)
        )

    def val_subset(self, limit: int) -> list[tuple[int, int]]:
        """Returns at most ``limit`` validation windows, evenly spread over all of them."""
        if limit <= 0 or len(self.val_windows) <= limit:
            return list(self.val_windows)
        idx = np.linspace(0, len(self.val_windows) - 1, limit).round().astype(int)
        return [self.val_windows[i] for i in idx]

"""The `vidpred` command: parses options, calls library functions, prints results.

Errors a user can cause become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import logging
import math
import os
import shlex
import signal
import sys
import threading
import typing
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .errors import (
    OutputError,
    TrainingInterrupted,
    VidpredError,
    one_line,
    shown,
)

if typing.TYPE_CHECKING:  # for annotations; the commands import what they use
    from .data import DataConfig, WindowDataset
    from .model import ModelConfig
    from .training import TrainConfig

# Used when none of --epochs/--steps/--time-limit is given.
DEFAULT_EPOCHS = 10

# --period-frames/--trend-frames when only --period/--trend is given.
DEFAULT_BRANCH_FRAMES = 2

# soft_wrap: never break paths across lines (users copy them).
stderr = Console(stderr=True, soft_wrap=True)


def _number(text: str, kind: type, allowed: str) -> int | float:
    """Returns ``text`` read as ``kind`` (int or float); otherwise raises argparse's type
    error saying what the option allows (argparse's own message names the parsing function,
    "invalid frame_size value: 'nan'", which tells the user nothing)."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help unless the help already says its default, or
    the default is None (the help then says what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "(default" in help_text or action.default is None:
            return help_text
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "0 or more")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "a positive number")
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def frame_size(text: str) -> int:
    from .data import MAX_SIZE, MIN_SIZE

    allowed = f"an integer from {MIN_SIZE} to {MAX_SIZE} px"
    value = _number(text, int, allowed)
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
    return value


def crop_size(text: str) -> int:
    value = _number(text, int, "0 (full frames) or a multiple of 4")
    if value < 0 or value % 4:
        raise argparse.ArgumentTypeError(f"must be 0 (full frames) or a multiple of 4, got {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text, float, "in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def tail_fraction(text: str) -> float:
    value = _number(text, float, "in (0, 1]")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


# Seeds: what a checkpoint may store (vidpred.checkpoint), and well inside the 64 bits torch
# seeds with (the data order uses seed * 1_000_003 + epoch).
MAX_SEED = 2**32 - 1

# Frame rates the reader takes from a file as they are (vidpred.video._measured_fps); outside
# them it falls back to 30 fps, so a generated clip would not play back at its --fps.
MIN_FPS, MAX_FPS = 0.5, 1000.0

# generate: at most this many clips per call; sides from the generators' smallest
# (vidpred.synthetic.MIN_SIDE) to the reader's largest working frame (4096x4096,
# vidpred.video.MAX_FRAME_PIXELS).
MAX_CLIPS, MIN_SIDE, MAX_SIDE = 100_000, 16, 4096


def at_most(parse, high: int):
    """Returns the argparse type ``parse`` with an upper bound: a checkpoint with a larger
    value would be refused on load (vidpred.checkpoint.MODEL_FIELDS), and building the model
    would ask for absurd memory long before that."""

    def parse_bounded(text: str) -> int:
        value = parse(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {text}")
        return value

    parse_bounded.__name__ = "int"  # argparse's "invalid int value" names the type by it
    return parse_bounded


def seed_value(text: str) -> int:
    value = _number(text, int, f"0 to {MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_SEED}, got {text}")
    return value


def clip_fps(text: str) -> float:
    value = _number(text, float, f"{MIN_FPS:g} to {MAX_FPS:g} frames per second")
    if not MIN_FPS <= value <= MAX_FPS:
        raise argparse.ArgumentTypeError(
            f"must be {MIN_FPS:g} to {MAX_FPS:g} frames per second, got {text}"
        )
    return value


def clip_side(text: str) -> int:
    value = _number(text, int, f"an even number of pixels from {MIN_SIDE} to {MAX_SIDE} (H.264)")
    if not MIN_SIDE <= value <= MAX_SIDE or value % 2:
        raise argparse.ArgumentTypeError(
            f"must be an even number of pixels from {MIN_SIDE} to {MAX_SIDE} (H.264), got {text}"
        )
    return value


def clip_count(text: str) -> int:
    value = _number(text, int, f"1 to {MAX_CLIPS}")
    if not 1 <= value <= MAX_CLIPS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_CLIPS}, got {text}")
    return value


def _add_cache_dir_option(p) -> None:
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="decode cache folder (default: $VIDPRED_CACHE, else ~/.cache/vidpred)",
    )


def _add_cache_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decode cache")
    _add_cache_dir_option(g)
    g.add_argument(
        "--no-cache", action="store_true", help="decode every video afresh; write no cache"
    )


# How `train` reads the numbers of the data and training settings: each check names the
# option and what it takes. (The model's sizes are read by _model_size_parser.)
TRAIN_NUMBERS = {
    "size": frame_size,
    "crop": crop_size,
    "val_fraction": fraction,
    "epochs": positive_int,
    "steps": positive_int,
    "time_limit": positive_float,
    "batch_size": positive_int,
    "lr": positive_float,
    "seed": seed_value,
    "ema": fraction,
}


def _model_size_parser(name: str):
    """Returns the argparse type of a model size: an integer within what a checkpoint may
    hold (vidpred.checkpoint.MODEL_FIELDS)."""
    from .checkpoint import MODEL_FIELDS

    allowed = MODEL_FIELDS[name]
    return at_most(positive_int if allowed.low >= 1 else non_negative_int, allowed.high)


def _add_config_options(group, config_class, names: tuple[str, ...] | None = None) -> None:
    """Adds to ``group`` an option for each field of the config dataclass ``config_class``
    that is one (all, or those in ``names``), with the field's default, choices and help
    (vidpred.options)."""
    from .options import flag, is_option

    types = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if not is_option(field) or (names is not None and field.name not in names):
            continue
        meta = field.metadata
        if types[field.name] is bool:
            how = {"action": argparse.BooleanOptionalAction}
        elif "choices" in meta:
            how = {"choices": meta["choices"]}
        else:
            how = {"type": TRAIN_NUMBERS.get(field.name) or _model_size_parser(field.name)}
        if "metavar" in meta:
            how["metavar"] = meta["metavar"]
        group.add_argument(
            flag(field), dest=field.name, default=field.default, help=meta["help"], **how
        )


def _add_train(sub) -> None:
    from .data import DataConfig
    from .model import ModelConfig
    from .training import TrainConfig

    p = sub.add_parser(
        "train",
        help="train a next-frame model on a folder of videos",
        description="Train an ST-ResNet to predict the next frame of the videos in FOLDER "
        "(searched recursively). Stops at the first of --epochs/--steps/--time-limit "
        f"(default: {DEFAULT_EPOCHS} epochs).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "folder", nargs="*", type=Path, help="video files or folders (optional with --resume)"
    )
    _add_config_options(p.add_argument_group("data"), DataConfig)
    _add_config_options(p.add_argument_group("model"), ModelConfig)
    g = p.add_argument_group("training")
    _add_config_options(g, TrainConfig)
    _add_layout_option(g)
    g.add_argument(
        "--compile", action="store_true", help="train through torch.compile (slow first steps)"
    )
    _add_cache_options(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", type=Path, default=None, help="checkpoint path (default weights/<folder name>.pt)"
    )
    g.add_argument("--force", action="store_true", help="overwrite an existing --out")
    g.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="continue training from this checkpoint, with its settings",
    )
    g.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this checkpoint's model (its architecture and weights; "
        "fresh optimizer and schedule): fine-tuning",
    )
    p.set_defaults(func=cmd_train)


def _add_generate(sub) -> None:
    from .synthetic import GENERATORS

    p = sub.add_parser(
        "generate",
        help="write procedurally generated training videos",
        description="Write COUNT procedural clips as H.264 mp4s into FOLDER; e.g. 'natural' "
        "clips (textured layers, camera motion, occlusion, lighting drift, noise) to train "
        "on motion that looks like the world.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("folder", type=Path, help="output folder (created if missing)")
    p.add_argument("--kind", choices=sorted(GENERATORS), default="natural")
    p.add_argument("--count", type=clip_count, default=16)
    p.add_argument("--length", type=positive_int, default=200, help="frames per clip")
    p.add_argument("--height", type=clip_side, default=128)
    p.add_argument("--width", type=clip_side, default=160)
    p.add_argument("--fps", type=clip_fps, default=25.0)
    p.add_argument("--seed", type=seed_value, default=0, help="clip i uses seed + i")
    p.add_argument("--force", action="store_true", help="overwrite existing clips")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from .outputs import claim_output
    from .synthetic import write_clips
    from .video import max_decoded_bytes

    if args.height % 2 or args.width % 2:
        raise VidpredError("--height and --width must be even (H.264)")
    # Each clip is generated whole in memory before it is encoded.
    needed, limit = args.length * args.height * args.width * 3, max_decoded_bytes()
    if needed > limit:
        raise VidpredError(
            f"--length {args.length} at {args.width}x{args.height} would take "
            f"{needed / 1e9:.1f} GB in memory per clip (the cap is {limit / 1e9:.1f} GB); "
            f"use a smaller --length, --height or --width"
        )
    args.folder.mkdir(parents=True, exist_ok=True)
    # The folder is the output: one generate at a time writes into it.
    lock = args.folder / ".vidpred-generate.lock"
    args.claims.enter_context(claim_output(args.folder, lock=lock))
    with _progress(transient=True) as progress:
        progress.add_task("generate", total=None, info=f"{args.count} {args.kind} clips")
        try:
            paths = write_clips(
                args.folder,
                args.kind,
                args.count,
                args.length,
                args.height,
                args.width,
                seed=args.seed,
                fps=args.fps,
                force=args.force,
            )
        except ValueError as e:
            raise VidpredError(str(e)) from e
    print(args.folder)
    if not args.quiet:
        stderr.print(f"wrote {len(paths)} clips")
    return 0


def _add_render(sub) -> None:
    p = sub.add_parser(
        "render",
        help="write an 'actual | predicted' mp4 of a clip",
        description="Predict every frame of CLIP from the real frames before it and write a "
        "side-by-side H.264 mp4 at the source fps.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("clip", type=Path, help="input video")
    _add_weights_option(p)
    p.add_argument(
        "--out", type=Path, default=None, help="output mp4 (default renders/<clip>.pred.mp4)"
    )
    _add_resolution_options(p, default="native")
    _add_segment_options(p, "render")
    p.add_argument(
        "--scale",
        type=positive_int,
        default=None,
        help="upscale panels for viewing (default: 2 for panels under 200 px, else 1)",
    )
    _add_render_views(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    _add_run_options(p)
    p.set_defaults(func=cmd_render)


def _add_weights_option(p) -> None:
    """Adds --weights and --size: the model render and eval run, at its working size."""
    p.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="checkpoint (default: newest trained, else shipped default)",
    )
    p.add_argument(
        "--size", type=frame_size, default=None, help="working size (default: the checkpoint's)"
    )


def _add_run_options(p) -> None:
    """Adds how render and eval run: device, precision, layout, batch and decode cache."""
    _add_device_options(p)
    p.add_argument("--batch-size", type=positive_int, default=8, help="frames per model call")
    _add_cache_options(p)


def _add_resolution_options(p, default: str) -> None:
    """Adds --resolution, --max-side and --gate (render and eval)."""
    from .gate import DEFAULT_GATE_WINDOW
    from .native import DEFAULT_MAX_SIDE, RESOLUTIONS

    p.add_argument(
        "--resolution",
        choices=RESOLUTIONS,
        default=default,
        help="native: at the clip's own size (the model's motion applied to the full-size "
        "frames); working: at the model's working size",
    )
    p.add_argument(
        "--max-side",
        type=frame_size,
        default=DEFAULT_MAX_SIDE,
        metavar="PX",
        help="at native resolution, shrink clips whose shorter side is larger to this",
    )
    p.add_argument(
        "--gate",
        type=non_negative_int,
        default=DEFAULT_GATE_WINDOW,
        metavar="FRAMES",
        help="show the flow baseline's one-step prediction instead of the model's where the "
        "model trailed it over this many frames just before (a causal per-clip check); "
        "0: always the model",
    )


def clock_time(text: str) -> float:
    """Returns seconds from "SECONDS", "MM:SS" or "HH:MM:SS" (each part may have decimals
    in its last field, as ffmpeg's -ss takes them)."""
    allowed = "seconds, MM:SS or HH:MM:SS"
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in values) or any(v >= 60 for v in values[1:]):
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return seconds


def duration_time(text: str) -> float:
    value = clock_time(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 s, got {text!r}")
    return value


def _add_segment_options(p, what: str) -> None:
    """Adds --start and --duration (render and eval)."""
    p.add_argument(
        "--start",
        type=clock_time,
        default=None,
        metavar="TIME",
        help=f"{what} from this time on (seconds, MM:SS or HH:MM:SS); the frames the first "
        "prediction needs are read from before it",
    )
    p.add_argument(
        "--duration",
        type=duration_time,
        default=None,
        metavar="TIME",
        help=f"{what} only this long (seconds, MM:SS or HH:MM:SS)",
    )


def _segment(args: argparse.Namespace):
    """Returns the vidpred.video.Segment of --start/--duration, or None without them."""
    from .video import Segment

    if args.start is None and args.duration is None:
        return None
    return Segment(args.start or 0.0, args.duration)


def _add_device_options(p) -> None:
    """Adds --device and --precision, as `train` has them, and --layout."""
    from .training import TrainConfig

    _add_config_options(p, TrainConfig, names=("device", "precision"))
    _add_layout_option(p)


def _add_layout_option(p) -> None:
    from .tuning import LAYOUTS

    p.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default="auto",
        help="memory layout of the model's activations; auto = what measured faster on "
        "this machine (once, vidpred.tuning), or $VIDPRED_LAYOUT",
    )


def _add_render_views(p) -> None:
    """Options of `render` for rollouts, future frames, panels and GIFs."""
    p.add_argument(
        "--horizon",
        type=positive_int,
        default=1,
        metavar="N",
        help="show N-step-ahead predictions (own predictions fed back in)",
    )
    p.add_argument(
        "--extend",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="append N frames predicted past the last real frame",
    )
    from .panels import DEFAULT_PANELS, PANELS

    p.add_argument(
        "--panels",
        default=",".join(DEFAULT_PANELS),
        help=f"comma-separated panels from {','.join(PANELS)} (flow: the optical-flow "
        "baseline's prediction; motion: the flow the model warps the last frame along)",
    )
    p.add_argument("--gif", action="store_true", help="also write a looping GIF beside the mp4")
    from .encoding import DEFAULT_CRF

    p.add_argument(
        "--crf",
        type=crf_value,
        default=DEFAULT_CRF,
        metavar="N",
        help="x264 quality: lower is larger and closer to the drawn frames (18: visually "
        "lossless, measured in docs/watching.md); 0: lossless RGB, for measuring from the mp4 "
        "(browsers do not play it)",
    )


def crf_value(text: str) -> int:
    from .encoding import MAX_CRF

    allowed = f"an integer from 0 to {MAX_CRF}"
    value = _number(text, int, allowed)
    if not 0 <= value <= MAX_CRF:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
    return value


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="next-frame metrics of a model next to the copy-last, linear and flow baselines",
        description="One-step next-frame MSE, MAE, PSNR and SSIM of the model, of copy-last-frame, "
        "of linear extrapolation and of classical optical flow (OpenCV DIS, extrapolated one "
        "step), per video and averaged over videos.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("paths", nargs="+", type=Path, help="video files or folders")
    _add_weights_option(p)
    p.add_argument(
        "--tail", type=tail_fraction, default=1.0, help="only targets in the last F of each video"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument(
        "--horizon",
        type=positive_int,
        default=None,
        metavar="N",
        help="also score rollouts of 1..N steps (own predictions fed back in)",
    )
    _add_resolution_options(p, default="working")
    _add_segment_options(p, "score targets")
    _add_run_options(p)
    p.set_defaults(func=cmd_eval)


def port_number(text: str) -> int:
    value = _number(text, int, "0 to 65535 (0 picks a free port)")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535 (0 picks a free port), got {text}")
    return value


def _add_gallery(sub) -> None:
    p = sub.add_parser(
        "gallery",
        help="write an index.html that shows every render in a folder",
        description="Write a self-contained RENDERS_DIR/index.html: each render as a video "
        "with its PSNR next to copy-last, the weights used and their training curve. Open "
        "it straight from disk, or with --serve.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "renders_dir",
        nargs="?",
        type=Path,
        default=Path("renders"),
        metavar="RENDERS_DIR",
        help="folder of renders",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite an index.html vidpred did not write"
    )
    p.add_argument("--serve", action="store_true", help="then serve the folder on localhost")
    p.add_argument(
        "--port", type=port_number, default=8000, help="port for --serve (0: any free port)"
    )
    p.set_defaults(func=cmd_gallery)


def _add_cache(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="show or clear the decode cache",
        description="Videos are decoded once per working size into a cache of uint8 frames; "
        "later runs read the cache. Without --clear, show where it is and how big it is.",
    )
    p.add_argument("--clear", action="store_true", help="remove every cached video")
    _add_cache_dir_option(p)
    p.set_defaults(func=cmd_cache)


def _add_bench(sub) -> None:
    from .training import TrainConfig

    p = sub.add_parser(
        "bench",
        help="measure training, decoding and rendering speed on this machine",
        description="Print the fp32 matmul peak, training FLOPs and samples/s (real loader vs "
        "in-memory batches), decode, inference and render frames/s and peak memory, measured "
        "on a generated clip. Takes about a minute or two on a 2-core CPU.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes, seconds: checks the plumbing only"
    )
    _add_config_options(p, TrainConfig, names=("device", "precision"))  # as `train` has them
    _add_layout_option(p)
    p.add_argument("--compile", action="store_true", help="train through torch.compile")
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidpred",
        description="Train a next-frame predictor on your own videos and watch how well it does.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_render(sub)
    _add_eval(sub)
    _add_generate(sub)
    _add_gallery(sub)
    _add_cache(sub)
    _add_bench(sub)
    return parser


_NOT_GIVEN = object()


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """Returns the parser of ``command``. (argparse has no public API for this; ``_actions``
    has been stable since Python 3.2.)"""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command]


def given_options(
    parser: argparse.ArgumentParser, argv: list[str] | None, command: str
) -> set[str]:
    """Returns the dests of the options of ``command`` that ``argv`` sets explicitly.

    argparse fills every missing option with its default, so its namespace cannot tell
    "--size 96" from no --size at all; parsing again with every default of the subcommand
    replaced by a marker can.
    """
    options = [
        a for a in _subparser(parser, command)._actions if a.option_strings and a.dest != "help"
    ]
    saved = [a.default for a in options]
    try:
        for action in options:
            action.default = _NOT_GIVEN
        marked, _ = parser.parse_known_args(argv)
    finally:
        for action, default in zip(options, saved, strict=True):
            action.default = default
    return {a.dest for a in options if getattr(marked, a.dest, _NOT_GIVEN) is not _NOT_GIVEN}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Returns the parsed command line; ``given`` holds the options it sets explicitly.

    ``given`` is the one record of what the user asked for: a resumed run changes only
    those settings, and a new run fills some defaults from other options. Exits with a usage
    error for options that are each valid but make no sense together.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = given_options(parser, argv, args.command)
    if args.command == "train" and args.resume is None:  # a resumed run keeps its own
        problem = _fill_new_run_defaults(args)
        if problem:
            _subparser(parser, "train").error(problem)
    return args


def _fill_new_run_defaults(args: argparse.Namespace) -> str | None:
    """Fills the defaults of `train` that depend on other options; returns the usage error
    of options that contradict each other, if any."""
    from .video import working_size

    shorter = working_size(args.size, args.size, args.size)[0]  # every frame's, at --size
    if "crop" not in args.given:
        args.crop = min(args.crop, shorter)
    if args.crop > shorter:
        return (
            f"argument --crop: {args.crop} is larger than the frames' shorter side at "
            f"--size {args.size} ({shorter} px)"
        )
    for name in ("period", "trend"):
        spacing, frames = getattr(args, name), getattr(args, f"{name}_frames")
        if f"{name}_frames" not in args.given:
            setattr(args, f"{name}_frames", DEFAULT_BRANCH_FRAMES if spacing else 0)
        elif frames and not spacing:
            return f"argument --{name}-frames: needs --{name}"
        elif spacing and frames == 0:
            return f"argument --{name}-frames: must be positive with --{name}"
    if not args.given & {"epochs", "steps", "time_limit"}:
        args.epochs = DEFAULT_EPOCHS
    return None


def _progress(transient: bool = False, disable: bool = False):
    """Returns the command's progress display on stderr: a live bar on a terminal, plain
    lines every few seconds in a log (``vidpred.progress``)."""
    from .progress import progress_display

    return progress_display(stderr, transient=transient, disable=disable)


def _load_predictor(weights: Path | None, device: str, precision: str, quiet: bool):
    from .predict import Predictor
    from .weights import resolve_weights

    path, why = resolve_weights(weights)
    predictor = Predictor.from_checkpoint(path, device, precision)
    if not quiet:
        stderr.print(f"weights: {shown(path)} ({why})", markup=False, highlight=False)
    return predictor


@dataclasses.dataclass
class TrainPlan:
    """What one `vidpred train` does: its settings, the videos it reads, the checkpoint it
    writes, and the one it continues or fine-tunes from, if any."""

    model_config: ModelConfig
    data_config: DataConfig
    config: TrainConfig
    sources: list[Path]  # video files and folders
    out: Path  # the checkpoint it writes, with its JSONL log beside it
    resume: dict | None = None  # the loaded checkpoint it continues
    init: dict | None = None  # the loaded checkpoint whose model it fine-tunes
    in_place: bool = False  # a resumed run that rewrites its own checkpoint and log

    def inputs(self) -> list[Path]:
        """Returns the files and folders it reads: never written, even with --force."""
        started_from = [] if self.in_place else [self.resume, self.init]
        return [*self.sources, *(ckpt["path"] for ckpt in started_from if ckpt is not None)]


def _config_from_args(config_class, args: argparse.Namespace, base=None):
    """Returns a ``config_class`` from the values of its options in ``args``; with ``base``,
    base's values with only the options the user gave replaced."""
    from .options import is_option

    names = [f.name for f in dataclasses.fields(config_class) if is_option(f)]
    try:
        if base is None:
            return config_class(**{name: getattr(args, name) for name in names})
        return dataclasses.replace(base, **{n: getattr(args, n) for n in names if n in args.given})
    except ValueError as e:  # options that are each valid but not together
        raise VidpredError(str(e)) from e


def new_run_plan(args: argparse.Namespace) -> TrainPlan:
    """Returns the plan of a new run, or one fine-tuning the model of --init."""
    from .checkpoint import load_checkpoint
    from .data import DataConfig
    from .model import ModelConfig
    from .training import TrainConfig, starting_model_config

    if not args.folder:
        raise VidpredError("name a folder of videos: vidpred train FOLDER")
    init = load_checkpoint(args.init) if args.init else None
    model_config = starting_model_config(_config_from_args(ModelConfig, args), init)
    data_config = _config_from_args(DataConfig, args)
    config = _config_from_args(TrainConfig, args)
    out = args.out or _default_checkpoint_path(args.folder[0])
    return TrainPlan(model_config, data_config, config, list(args.folder), out, init=init)


def _default_checkpoint_path(source: Path) -> Path:
    """Returns weights/<name of the first video or folder>.pt, making the folder."""
    source = source.resolve()
    out = Path("weights") / f"{source.stem if source.is_file() else source.name}.pt"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out.parent}: cannot create the folder ({e.strerror})") from e
    return out


def resumed_run_plan(args: argparse.Namespace) -> TrainPlan:
    """Returns the plan of a run that continues the checkpoint of --resume, with its settings:
    options that would change one it keeps are refused (vidpred.training.check_resume)."""
    from .checkpoint import load_checkpoint
    from .data import DataConfig
    from .model import ModelConfig
    from .training import TrainConfig, check_resume, stored_train_config

    resume = load_checkpoint(args.resume)
    sources = list(args.folder) or [Path(s) for s in resume.get("sources", [])]
    if not sources:
        raise VidpredError(
            f"{args.resume}: no video folder stored; name it: vidpred train FOLDER --resume ..."
        )
    # Before building anything from them: the options as given, against the checkpoint's.
    check_resume(resume, {name: getattr(args, name) for name in args.given})
    model_config = _config_from_args(ModelConfig, args, resume["model_config"])
    data_config = _config_from_args(DataConfig, args, resume["data_config"])
    config = _config_from_args(TrainConfig, args, stored_train_config(resume))
    out = args.out or args.resume
    in_place = out.resolve() == args.resume.resolve()
    return TrainPlan(model_config, data_config, config, sources, out, resume, in_place=in_place)


def _check_checkpoint_path(plan: TrainPlan, force: bool) -> None:
    """Raises OutputError if the run may not write its checkpoint or log where it would."""
    from .checkpoint import metrics_log_path
    from .outputs import check_output_path
    from .video import VIDEO_EXTENSIONS

    out, log = plan.out, metrics_log_path(plan.out)
    for path in (out, log):
        # A resumed run rewrites its own checkpoint and log: they may exist.
        check_output_path(path, force=force or plan.in_place, inputs=plan.inputs())
    if out.suffix.lower() in VIDEO_EXTENSIONS:
        raise OutputError(f"{out}: a checkpoint path must not end in {out.suffix} (use .pt)")
    if log == out:  # each epoch's log would replace the checkpoint
        raise OutputError(
            f"{out}: a checkpoint path must not end in .jsonl: its per-epoch log is written "
            f"beside it under that name (use .pt)"
        )


def _training_data(plan: TrainPlan, args: argparse.Namespace) -> WindowDataset:
    """Returns the windows of the plan's videos, with the base flows when the model uses them."""
    from .data import WindowDataset, load_flows, load_videos

    size, cache = plan.data_config.size, not args.no_cache
    videos = load_videos(
        plan.sources,
        size,
        min_frames=plan.model_config.history + 1,
        cache=cache,
        cache_dir=args.cache_dir,
    )
    flows = None
    if plan.model_config.uses_flow:  # computed once per video, then read from the decode cache
        flows = load_flows(videos, size, cache=cache, cache_dir=args.cache_dir)
    return WindowDataset(videos, plan.model_config.input_offsets(), plan.data_config, flows)


def _announce(plan: TrainPlan, data: WindowDataset) -> None:
    """Prints what the run trains on, and from where it starts."""
    from .model import STResNet, count_parameters

    parameters = count_parameters(STResNet(plan.model_config))
    stderr.print(
        f"{len(data.videos)} videos, {len(data.train_windows)} training / "
        f"{len(data.val_windows)} validation windows; model {parameters:,} parameters; "
        f"checkpoint -> {shown(plan.out)}",
        markup=False,
    )
    uses_flow, ema = plan.model_config.uses_flow, plan.config.ema
    start = "the classical DIS flow (flow baseline)" if uses_flow else "copy-last"
    holds = (
        f"an exponential moving average of the weights (decay {ema})"
        if ema
        else "the last step's weights"
    )
    stderr.print(f"training starts at {start}; the checkpoint holds {holds}", markup=False)


def _train_reporters(progress):
    """Returns the (on_step, on_epoch) callbacks that show training on ``progress``."""
    task = progress.add_task("train", total=1.0, info="")

    def on_step(s: dict) -> None:
        progress.update(
            task,
            completed=s["progress"],
            info=f"step {s['step']}  loss {s['loss']:.4f}  {s['samples_per_s']:.1f} samples/s",
        )

    def on_epoch(row: dict) -> None:
        if "val_psnr" not in row:
            progress.console.print(
                f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} (no validation set)"
            )
            return
        gain = row["val_psnr"] - row["val_psnr_copy_last"]
        over_flow = row["val_psnr"] - row["val_psnr_flow"]
        progress.console.print(
            f"epoch {row['epoch']}: val PSNR model {row['val_psnr']:.2f} dB, "
            f"copy-last {row['val_psnr_copy_last']:.2f} dB ({gain:+.2f}), "
            f"flow {row['val_psnr_flow']:.2f} dB ({over_flow:+.2f}), "
            f"train loss {row['train_loss']:.4f}, {row['samples_per_s']:.1f} samples/s"
        )

    return on_step, on_epoch


def cmd_train(args: argparse.Namespace) -> int:
    from .distributed import env_world, process_group
    from .outputs import claim_output
    from .precision import resolve_device
    from .training import train
    from .weights import record_latest

    if args.resume is not None and args.init is not None:
        raise VidpredError("--resume and --init cannot be combined")
    plan = resumed_run_plan(args) if args.resume is not None else new_run_plan(args)
    _check_checkpoint_path(plan, args.force)
    world = env_world()  # under torchrun, only rank 0 talks to the user and writes
    if world.is_main:  # a second run naming this --out is refused
        check = functools.partial(_check_checkpoint_path, plan, args.force)
        args.claims.enter_context(claim_output(plan.out, check=check))
    data = _training_data(plan, args)
    if not args.quiet and world.is_main:
        _announce(plan, data)
    progress = _progress(disable=args.quiet or not world.is_main)
    on_step, on_epoch = _train_reporters(progress)
    with process_group(resolve_device(plan.config.device).type), progress:
        try:
            train(
                data,
                plan.model_config,
                plan.data_config,
                plan.config,
                plan.out,
                sources=[str(s.resolve()) for s in plan.sources],
                resume=plan.resume,
                init=plan.init,
                on_step=on_step,
                on_epoch=on_epoch,
                compile_model=args.compile,
            )
        finally:
            if plan.out.exists() and world.is_main:
                record_latest(plan.out)
    if world.is_main:
        print_path(plan.out)
        if not args.quiet:
            _print_next_steps(plan)
    return 0


def _shell_word(path: Path) -> str:
    """Returns ``path`` as one word a shell reads back: quoted as needed, and a name that is
    not printable (bytes that are not UTF-8, a newline) in bash's $'...' form (``shown``)."""
    text = os.fsdecode(path)
    return shlex.quote(text) if text.isprintable() else shown(path)


def _print_next_steps(plan: TrainPlan) -> None:
    """Tells, on stderr, how to watch and score the new checkpoint: render a clip with it,
    and evaluate it on the held-out part of what it trained on."""
    weights = _shell_word(plan.out)
    sources = " ".join(_shell_word(s) for s in plan.sources)
    tail = plan.data_config.val_fraction
    lines = [
        "next: watch it:  vidpred render CLIP --weights " + weights,
        f"      score it:  vidpred eval {sources} --weights {weights}"
        + (f" --tail {tail:g}  (the part it never trained on)" if tail > 0 else ""),
    ]
    for line in lines:
        stderr.print(line, markup=False, highlight=False, soft_wrap=True)


def cmd_render(args: argparse.Namespace) -> int:
    from .outputs import check_output_path
    from .rendering import check_render_path, render

    views = _render_views(args)  # option errors before the weights load
    if args.out is not None:  # and output errors (render checks again, with the weights used)
        inputs = (args.clip, *filter(None, [args.weights]))
        check_output_path(args.out, force=args.force, inputs=inputs)
        check_render_path(args.out)
    predictor = _load_predictor(args.weights, args.device, args.precision, args.quiet)
    with _progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("render", total=None, info="", unit="frames")

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, info=f"{done}/{total} frames")

        out = render(
            args.clip,
            predictor,
            args.out,
            scale=args.scale,
            force=args.force,
            on_progress=on_progress,
            **_video_options(args),
            **views,
        )
    print_path(out)
    return 0


def _video_options(args: argparse.Namespace) -> dict:
    """Returns the options `render` and `eval` share, as keyword arguments of
    ``vidpred.render`` and ``vidpred.evaluate``."""
    return {
        "size": args.size,
        "resolution": args.resolution,
        "max_side": args.max_side,
        "batch_size": args.batch_size,
        "cache": not args.no_cache,
        "cache_dir": args.cache_dir,
        "gate": args.gate,
        "segment": _segment(args),
    }


def _render_views(args: argparse.Namespace) -> dict:
    from .panels import parse_panels

    return {
        "horizon": args.horizon,
        "extend": args.extend,
        "panels": parse_panels(args.panels),
        "gif": args.gif,
        "crf": args.crf,
    }


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import METHODS, evaluate

    predictor = _load_predictor(args.weights, args.device, args.precision, args.quiet or args.json)
    with _progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("eval", total=None, info="")

        def on_video(path: str, targets: int) -> None:
            progress.update(task, info=f"{Path(path).name} ({targets} targets)")

        result = evaluate(
            args.paths,
            predictor,
            tail=args.tail,
            horizon=args.horizon,
            on_video=on_video,
            **_video_options(args),
        )
    _warn_trained_on(result, predictor.data_config.val_fraction)
    if args.json:
        from .outputs import strict_json  # NaN would print as a bare NaN, which is not JSON

        print(strict_json(result))
        return 0
    weights = shown(result["weights"]) if result["weights"] else None
    table = Table(title=f"one-step next-frame metrics (weights {weights}, tail {args.tail})")
    for column in ("video", "targets", "method", "PSNR dB", "PSNR median", "SSIM", "MAE", "MSE"):
        table.add_column(column, justify="left" if column in ("video", "method") else "right")
    rows = [(shown(Path(v["path"]).name), str(v["targets"]), v) for v in result["videos"]]
    rows.append(("mean over videos", "", result["mean"]))
    methods = METHODS if "model_ungated" not in result["mean"] else (*METHODS, "model_ungated")
    for name, targets, values in rows:
        for i, method in enumerate(methods):
            m = values[method]
            label = "model alone" if method == "model_ungated" else method
            if method == "model" and "gate" in values:
                label += f" (flow shown {values['gate']['flow_share']:.0%})"
            table.add_row(
                name if i == 0 else "",
                targets if i == 0 else "",
                label,
                f"{m['psnr']:.2f}",
                f"{m['psnr_median']:.2f}",
                f"{m['ssim']:.4f}",
                f"{m['mae']:.5f}",
                f"{m['mse']:.6f}",
            )
        table.add_section()
    # Piped or redirected, rich would cut the table to 80 columns; a file gets all of it.
    console = Console() if sys.stdout.isatty() else Console(width=1000)
    console.print(table)
    if "horizon" in result:
        console.print(_horizon_table(result))
    console.print(_eval_legend(result["gate"]), markup=False, highlight=False)
    return 0


def _warn_trained_on(result: dict, val_fraction: float) -> None:
    """Warns, one line per video, where the scored targets include the weights' training
    frames: those score higher than new footage would, as a trainer's validation does not."""
    for video in result.get("videos", []):
        if video.get("trained_on"):
            logging.getLogger("vidpred").warning(
                "%s: %d of the %d scored targets were training frames of these weights; "
                "--tail %g scores only the part they never trained on",
                shown(video["path"]),
                video["trained_on"],
                video["targets"],
                val_fraction,
            )


def _eval_legend(gate: int) -> str:
    """Returns the lines under eval's table that say what each method is."""
    model = (
        f"model: the model, gated: the flow baseline's prediction is shown where the model "
        f"trailed it over the {gate} frames before (--gate 0: the model alone)"
        if gate
        else "model: the model's one-step prediction"
    )
    return "\n".join(
        [
            model,
            "copy_last: frame t-1 unchanged; linear: 2 x[t-1] - x[t-2]; flow: frame t-1 moved "
            "along OpenCV DIS optical flow from t-1 to t-2 (no training)",
        ]
    )


def _horizon_table(result: dict) -> Table:
    from .evaluation import METHODS

    table = Table(title="rollouts: PSNR dB of the prediction k steps ahead (mean over videos)")
    for column in ("step", *METHODS):
        table.add_column(column, justify="right")
    for row in result["horizon"]:
        psnrs = (f"{row[m]['psnr']:.2f}" for m in METHODS)
        table.add_row(str(row["step"]), *psnrs)
    return table


def cmd_gallery(args: argparse.Namespace) -> int:
    from .gallery import shown, write_gallery
    from .serve import serve

    index = write_gallery(args.renders_dir, force=args.force)
    print(shown(index))
    if args.serve:
        server = serve(args.renders_dir, args.port)
        host, port = server.server_address[:2]
        # markup=False: a folder named like "g[/b]" is a path, not rich markup.
        stderr.print(
            f"serving {shown(args.renders_dir)} at http://{host}:{port}/ (Ctrl-C stops)",
            markup=False,
            highlight=False,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


def print_path(path: Path) -> None:
    """Prints a result path on stdout: on a terminal as messages show it (``shown``); to a pipe
    as the name's own bytes, which a script can use as is even when they are not UTF-8 (text
    output would fail on them, or change them)."""
    buffer = getattr(sys.stdout, "buffer", None)  # None for a text-only stream (StringIO)
    if sys.stdout.isatty() or buffer is None:
        print(shown(path) if sys.stdout.isatty() else path)
        return
    sys.stdout.flush()
    buffer.write(os.fsencode(path) + b"\n")
    sys.stdout.flush()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class _LineHandler(logging.Handler):
    """Prints each log record as one unwrapped line on stderr, so a path in it copies whole
    (rich's log handler wraps long lines at the terminal width, mid-path)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = (
            f"vidpred: {record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        )
        # one_line: a control character in a path (a newline) must not split the line.
        text = one_line(prefix + self.format(record))
        stderr.print(text, markup=False, highlight=False, soft_wrap=True)


def cmd_cache(args: argparse.Namespace) -> int:
    from .cache import cache_stats, clear_cache

    if args.clear:
        removed = clear_cache(args.cache_dir)
        print(
            f"removed {removed.entries} cached videos ({removed.bytes / 1e6:.1f} MB) "
            f"from {removed.folder}"
        )
    else:
        stats = cache_stats(args.cache_dir)
        print(f"{stats.folder}: {stats.entries} cached videos, {stats.bytes / 1e6:.1f} MB")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import report_rows, run_bench

    with _progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("bench", total=None, info="")
        result = run_bench(
            quick=args.quick,
            device=args.device,
            precision=args.precision,
            compile_model=args.compile,
            on_stage=lambda text: progress.update(task, info=text),
        )
    if args.json:
        from .outputs import strict_json  # NaN would print as a bare NaN, which is not JSON

        print(strict_json(result))
        return 0
    flags = ", ".join(result["cpu_flags"]) or "none of AMX, AVX-512, AVX2"
    title = (
        f"vidpred bench on {result['device']}: {result['cpu']} ({flags}), "
        f"{result['threads']} threads, torch {result['torch']}; "
        f"{'bf16' if result['bf16'] else 'fp32'}, "
        f"{'channels-last' if result['channels_last'] else 'contiguous'} in training, "
        f"{'channels-last' if result['channels_last_inference'] else 'contiguous'} in inference"
    )
    if result["arithmetic_samples_per_s"]:
        title += "; measured: " + ", ".join(
            f"{name} {rate:.1f}" for name, rate in result["arithmetic_samples_per_s"].items()
        )
    if args.quick:
        title += " (--quick: sizes too small to mean anything)"
    table = Table(title=title)
    table.add_column("measurement")
    table.add_column("value", justify="right")
    for label, value in report_rows(result):
        table.add_row(label, value)
    Console().print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from .tuning import fix_layout

    fix_layout(getattr(args, "layout", "auto"))  # for this command; undone when it ends
    # Under torchrun every rank runs this; only rank 0 logs anything short of an error.
    other_rank = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(
        level=logging.ERROR if other_rank else logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        handlers=[_LineHandler()],
    )
    # `kill` unwinds like Ctrl-C, so a stopped render removes its temp file instead of
    # leaving it behind (training installs its own handler and saves a checkpoint).
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    # Outputs a command claims (vidpred.outputs.claim_output) are released when it ends,
    # however it ends.
    args.claims = contextlib.ExitStack()
    try:
        with args.claims:
            return args.func(args)
    except TrainingInterrupted as e:
        if not other_rank:  # every rank stops at the same step; one message is enough
            stderr.print(one_line(f"vidpred: {e}"), highlight=False, soft_wrap=True, markup=False)
        return 130
    except VidpredError as e:
        stderr.print(
            one_line(f"vidpred: error: {e}"), highlight=False, soft_wrap=True, markup=False
        )
        return 1
    except KeyboardInterrupt:
        stderr.print("vidpred: interrupted")
        return 130
    except OSError as e:  # the file system said no (disk full, permissions) somewhere unexpected
        where = f"{shown(e.filename)}: " if e.filename else ""
        stderr.print(f"vidpred: error: {where}{e.strerror or e}", highlight=False, markup=False)
        return 1
    finally:
        fix_layout("auto")
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())

"""The `vidpred` command: parses options, calls library functions, prints results.

Errors a user can cause become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .errors import TrainingInterrupted, VidpredError

# Used when none of --epochs/--steps/--time-limit is given.
DEFAULT_EPOCHS = 10

# soft_wrap: never break paths across lines (users copy them).
stderr = Console(stderr=True, soft_wrap=True)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def tail_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _add_cache_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decode cache")
    g.add_argument("--cache-dir", type=Path, default=None,
                   help="decode cache folder (None: $VIDPRED_CACHE, else ~/.cache/vidpred)")
    g.add_argument("--no-cache", action="store_true",
                   help="decode every video afresh; write no cache")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a next-frame model on a folder of videos",
        description="Train an ST-ResNet to predict the next frame of the videos in FOLDER "
        "(searched recursively). Stops at the first of --epochs/--steps/--time-limit "
        f"(default: {DEFAULT_EPOCHS} epochs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("folder", nargs="*", type=Path, help="video files or folders (optional with --resume)")
    g = p.add_argument_group("data")
    g.add_argument("--frames", type=positive_int, default=4, help="K: past frames stacked as input")
    g.add_argument("--size", type=positive_int, default=96, help="shorter side of the working size, px")
    g.add_argument("--crop", type=non_negative_int, default=64, help="training crop side, px (0 = full frames)")
    g.add_argument("--val-fraction", type=fraction, default=0.2, help="last fraction of each video held out")
    g = p.add_argument_group("model")
    g.add_argument("--width", type=positive_int, default=64, help="channels per branch")
    g.add_argument("--depth", type=non_negative_int, default=4, help="residual units per branch")
    g.add_argument("--stem", action="store_true", help="space-to-depth stem (4x less compute)")
    g.add_argument("--batch-norm", action="store_true", help="batch norm in residual units")
    g.add_argument("--period", type=non_negative_int, default=0, help="period branch spacing in frames (0 = off)")
    g.add_argument("--period-frames", type=non_negative_int, default=None, help="frames the period branch sees (default 2 when --period is set)")
    g.add_argument("--trend", type=non_negative_int, default=0, help="trend branch spacing in frames (0 = off)")
    g.add_argument("--trend-frames", type=non_negative_int, default=None, help="frames the trend branch sees (default 2 when --trend is set)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=None, help="passes over the training windows")
    g.add_argument("--steps", type=positive_int, default=None, help="optimizer steps")
    g.add_argument("--time-limit", type=positive_float, default=None, metavar="MINUTES", help="wall-clock budget")
    g.add_argument("--batch-size", type=positive_int, default=8,
                   help="global batch; torchrun splits it evenly among processes")
    g.add_argument("--lr", type=positive_float, default=1e-3, help="peak learning rate (AdamW)")
    g.add_argument("--loss", choices=("l1", "mse"), default="l1")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    g.add_argument("--compile", action="store_true",
                   help="train through torch.compile (slow first steps)")
    _add_cache_options(p)
    g = p.add_argument_group("output")
    g.add_argument("--out", type=Path, default=None, help="checkpoint path (default weights/<folder name>.pt)")
    g.add_argument("--force", action="store_true", help="overwrite an existing --out")
    g.add_argument("--resume", type=Path, default=None, help="continue training from this checkpoint")
    p.set_defaults(func=cmd_train)


def _add_render(sub) -> None:
    p = sub.add_parser(
        "render",
        help="write an 'actual | predicted' mp4 of a clip",
        description="Predict every frame of CLIP from the real frames before it and write a "
        "side-by-side H.264 mp4 at the source fps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("clip", type=Path, help="input video")
    p.add_argument("--weights", type=Path, default=None, help="checkpoint (default: newest trained, else shipped default)")
    p.add_argument("--out", type=Path, default=None, help="output mp4 (default renders/<clip>.pred.mp4)")
    p.add_argument("--size", type=positive_int, default=None, help="working size (default: the checkpoint's)")
    p.add_argument("--scale", type=positive_int, default=2, help="upscale panels for viewing")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--batch-size", type=positive_int, default=8, help="frames per model call")
    _add_cache_options(p)
    p.set_defaults(func=cmd_render)


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="next-frame metrics of a model next to copy-last and linear baselines",
        description="One-step next-frame MSE, MAE, PSNR and SSIM of the model, of copy-last-frame "
        "and of linear extrapolation, per video and averaged over videos.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("paths", nargs="+", type=Path, help="video files or folders")
    p.add_argument("--weights", type=Path, default=None, help="checkpoint (default: newest trained, else shipped default)")
    p.add_argument("--tail", type=tail_fraction, default=1.0, help="only targets in the last F of each video")
    p.add_argument("--size", type=positive_int, default=None, help="working size (default: the checkpoint's)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--batch-size", type=positive_int, default=8, help="frames per model call")
    _add_cache_options(p)
    p.set_defaults(func=cmd_eval)


def _add_cache(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="show or clear the decode cache",
        description="Videos are decoded once per working size into a cache of uint8 frames; "
        "later runs read the cache. Without --clear, show where it is and how big it is.",
    )
    p.add_argument("--clear", action="store_true", help="remove every cached video")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="cache folder (default: $VIDPRED_CACHE, else ~/.cache/vidpred)")
    p.set_defaults(func=cmd_cache)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure training, decoding and rendering speed on this machine",
        description="Print the fp32 matmul peak, training FLOPs and samples/s (real loader vs "
        "in-memory batches), decode, inference and render frames/s and peak memory, measured "
        "on a generated clip. Takes about a minute or two on a 2-core CPU.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, seconds: checks the plumbing only")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
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
    _add_cache(sub)
    _add_bench(sub)
    return parser


def _progress(transient: bool = False, disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
        disable=disable,
    )


def _load_predictor(weights: Path | None, device: str, quiet: bool):
    from .predict import Predictor
    from .weights import resolve_weights

    path, why = resolve_weights(weights)
    predictor = Predictor.from_checkpoint(path, device)
    if not quiet:
        stderr.print(f"weights: {path} ({why})")
    return predictor


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .data import DataConfig, WindowDataset, load_videos
    from .distributed import env_world, process_group
    from .model import ModelConfig, STResNet, count_parameters
    from .train import TrainConfig, continue_config, resolve_device, train
    from .video import check_output_path
    from .weights import record_latest

    world = env_world()  # under torchrun, only rank 0 talks to the user
    resume = load_checkpoint(args.resume) if args.resume else None
    if resume is not None:
        model_config, data_config = resume["model_config"], resume["data_config"]
        sources = [Path(s) for s in args.folder] or [Path(s) for s in resume.get("sources", [])]
        if not sources:
            raise VidpredError(f"{args.resume}: no video folder stored; name it: vidpred train FOLDER --resume ...")
        config = continue_config(
            resume["train_config"], epochs=args.epochs, steps=args.steps, time_limit=args.time_limit
        )
        out = args.out or args.resume
        if out.resolve() != args.resume.resolve():
            check_output_path(out, force=args.force)
    else:
        if not args.folder:
            raise VidpredError("name a folder of videos: vidpred train FOLDER")
        sources = list(args.folder)
        try:
            model_config = ModelConfig(
                frames=args.frames, width=args.width, depth=args.depth, stem=args.stem,
                batch_norm=args.batch_norm, period=args.period,
                period_frames=args.period_frames if args.period_frames is not None else (2 if args.period else 0),
                trend=args.trend,
                trend_frames=args.trend_frames if args.trend_frames is not None else (2 if args.trend else 0),
            )
            data_config = DataConfig(size=args.size, val_fraction=args.val_fraction, crop=args.crop)
            limits = (args.epochs, args.steps, args.time_limit)
            config = TrainConfig(
                epochs=args.epochs if any(limits) else DEFAULT_EPOCHS, steps=args.steps,
                time_limit=args.time_limit, batch_size=args.batch_size, lr=args.lr,
                loss=args.loss, seed=args.seed, device=args.device,
            )
        except ValueError as e:
            raise VidpredError(str(e)) from e
        first = sources[0].resolve()
        out = args.out or Path("weights") / f"{first.stem if first.is_file() else first.name}.pt"
        if args.out is None:
            out.parent.mkdir(parents=True, exist_ok=True)
        check_output_path(out, force=args.force)

    videos = load_videos(
        sources, data_config.size, min_frames=model_config.history + 1,
        cache=not args.no_cache, cache_dir=args.cache_dir,
    )
    data = WindowDataset(videos, model_config.input_offsets(), data_config)
    if not args.quiet and world.is_main:
        stderr.print(
            f"{len(videos)} videos, {len(data.train_windows)} training / {len(data.val_windows)} "
            f"validation windows; model {count_parameters(STResNet(model_config)):,} parameters; "
            f"checkpoint -> {out}"
        )

    progress = _progress(disable=not world.is_main)
    task = progress.add_task("train", total=1.0, info="")

    def on_step(s: dict) -> None:
        progress.update(
            task, completed=s["progress"],
            info=f"step {s['step']}  loss {s['loss']:.4f}  {s['samples_per_s']:.1f} samples/s",
        )

    def on_epoch(row: dict) -> None:
        if "val_psnr" in row:
            gain = row["val_psnr"] - row["val_psnr_copy_last"]
            progress.console.print(
                f"epoch {row['epoch']}: val PSNR model {row['val_psnr']:.2f} dB, "
                f"copy-last {row['val_psnr_copy_last']:.2f} dB ({gain:+.2f}), "
                f"train loss {row['train_loss']:.4f}, {row['samples_per_s']:.1f} samples/s"
            )
        else:
            progress.console.print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} (no validation set)")

    with process_group(resolve_device(config.device).type), progress:
        try:
            train(
                data, model_config, data_config, config, out,
                sources=[str(s.resolve()) for s in sources], resume=resume,
                on_step=on_step, on_epoch=on_epoch, compile_model=args.compile,
            )
        finally:
            if out.exists() and world.is_main:
                record_latest(out)
    if world.is_main:
        print(out)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .render import render

    predictor = _load_predictor(args.weights, args.device, args.quiet)
    with _progress(transient=True) as progress:
        task = progress.add_task("render", total=None, info="")

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, info=f"{done}/{total} frames")

        out = render(
            args.clip, predictor, args.out, size=args.size, scale=args.scale,
            force=args.force, on_progress=on_progress, batch_size=args.batch_size,
            cache=not args.no_cache, cache_dir=args.cache_dir,
        )
    print(out)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import METHODS, evaluate

    predictor = _load_predictor(args.weights, args.device, args.quiet or args.json)
    with _progress(transient=True) as progress:
        task = progress.add_task("eval", total=None, info="")

        def on_video(path: str, targets: int) -> None:
            progress.update(task, info=f"{Path(path).name} ({targets} targets)")

        result = evaluate(
            args.paths, predictor, tail=args.tail, size=args.size, on_video=on_video,
            batch_size=args.batch_size, cache=not args.no_cache, cache_dir=args.cache_dir,
        )
    if args.json:
        print(json.dumps(result))
        return 0
    table = Table(title=f"one-step next-frame metrics (weights {result['weights']}, tail {args.tail})")
    for column in ("video", "targets", "method", "PSNR dB", "PSNR median", "SSIM", "MAE", "MSE"):
        table.add_column(column, justify="left" if column in ("video", "method") else "right")
    rows = [(Path(v["path"]).name, str(v["targets"]), v) for v in result["videos"]]
    rows.append(("mean over videos", "", result["mean"]))
    for name, targets, values in rows:
        for i, method in enumerate(METHODS):
            m = values[method]
            table.add_row(
                name if i == 0 else "", targets if i == 0 else "", method,
                f"{m['psnr']:.2f}", f"{m['psnr_median']:.2f}", f"{m['ssim']:.4f}",
                f"{m['mae']:.5f}", f"{m['mse']:.6f}",
            )
        table.add_section()
    Console().print(table)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from .cache import cache_stats, clear_cache

    if args.clear:
        removed = clear_cache(args.cache_dir)
        print(f"removed {removed.entries} cached videos ({removed.bytes / 1e6:.1f} MB) "
              f"from {removed.folder}")
    else:
        stats = cache_stats(args.cache_dir)
        print(f"{stats.folder}: {stats.entries} cached videos, {stats.bytes / 1e6:.1f} MB")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import report_rows, run_bench

    with _progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("bench", total=None, info="")
        result = run_bench(
            quick=args.quick, device=args.device, compile_model=args.compile,
            on_stage=lambda text: progress.update(task, info=text),
        )
    if args.json:
        print(json.dumps(result))
        return 0
    title = f"vidpred bench on {result['device']}"
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
    parser = build_parser()
    args = parser.parse_args(argv)
    # Under torchrun every rank runs this; only rank 0 logs anything short of an error.
    other_rank = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(
        level=logging.ERROR if other_rank else logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=stderr, show_time=False, show_path=False)],
    )
    try:
        return args.func(args)
    except TrainingInterrupted as e:
        if not other_rank:  # every rank stops at the same step; one message is enough
            stderr.print(f"vidpred: {e}", highlight=False, soft_wrap=True)
        return 130
    except VidpredError as e:
        stderr.print(f"vidpred: error: {e}", highlight=False, soft_wrap=True, markup=False)
        return 1
    except KeyboardInterrupt:
        stderr.print("vidpred: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

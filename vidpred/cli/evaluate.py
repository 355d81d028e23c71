"""`vidpred eval`: the metrics table, its legend, and what was scored."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..errors import shown
from .console import stderr_progress
from .shared import (
    HelpFormatter,
    adapt_config,
    add_adapt_options,
    add_resolution_options,
    add_run_options,
    add_segment_options,
    add_weights_option,
    load_predictor,
    video_options,
)
from .validators import positive_int, tail_fraction


def add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="next-frame metrics of a model next to the copy-last, linear and flow baselines",
        description="One-step next-frame MSE, MAE, PSNR and SSIM of the model, of copy-last-frame, "
        "of linear extrapolation and of classical optical flow (OpenCV DIS, extrapolated one "
        "step), per video and averaged over videos.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", type=Path, help="video files or folders")
    add_weights_option(p)
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
    add_adapt_options(p)
    add_resolution_options(p, default="working")
    add_segment_options(p, "score targets")
    add_run_options(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from ..evaluation import METHODS, evaluate

    predictor = load_predictor(args, args.quiet or args.json)
    with stderr_progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("eval", total=None, info="")

        def on_video(path: str, targets: int) -> None:
            progress.update(task, info=f"{Path(path).name} ({targets} targets)")

        result = evaluate(
            args.paths,
            predictor,
            tail=args.tail,
            horizon=args.horizon,
            on_video=on_video,
            video_options=video_options(args),
            adapt=adapt_config(args),
        )
    _warn_trained_on(result, predictor.data_config.val_fraction)
    if args.json:
        from ..outputs import strict_json  # NaN would print as a bare NaN, which is not JSON

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
                gate = values["gate"]
                label += f" (flow shown {gate['flow_share']:.0%}"
                label += f", repeats {gate['repeat_share']:.0%})" if gate["repeat_share"] else ")"
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
    if result["adapt"]:
        adapt = result["adapt"]
        console.print(
            f"the model learned while watching (--adapt {adapt['steps_per_frame']:g}, lr "
            f"{adapt['lr']:g}): each clip from its first frame, from the weights' start",
            markup=False,
            highlight=False,
        )
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
        f"trailed it over the {gate} frames before (rollouts: over the {gate} k-step "
        f"predictions already scored; --gate 0: the model alone); one step ahead, frame t-1 "
        f"unmoved where the clip's cadence of repeated frames says frame t repeats it"
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
    from ..evaluation import METHODS

    table = Table(title="rollouts: PSNR dB of the prediction k steps ahead (mean over videos)")
    methods = [m for m in (*METHODS, "model_ungated") if m in result["horizon"][0]]
    for column in ("step", *methods):
        table.add_column("model alone" if column == "model_ungated" else column, justify="right")
    for row in result["horizon"]:
        psnrs = (f"{row[m]['psnr']:.2f}" for m in methods)
        table.add_row(str(row["step"]), *psnrs)
    return table

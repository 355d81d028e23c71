"""`vidpred render`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .console import print_path, stderr_progress
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
from .validators import crf_value, non_negative_int, positive_int


def add_render(sub) -> None:
    p = sub.add_parser(
        "render",
        help="write an 'actual | predicted' mp4 of a clip",
        description="Predict every frame of CLIP from the real frames before it and write a "
        "side-by-side H.264 mp4 at the source fps.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("clip", type=Path, help="input video")
    add_weights_option(p)
    p.add_argument(
        "--out", type=Path, default=None, help="output mp4 (default renders/<clip>.pred.mp4)"
    )
    add_adapt_options(p)
    add_resolution_options(p, default="native")
    add_segment_options(p, "render")
    p.add_argument(
        "--scale",
        type=positive_int,
        default=None,
        help="upscale panels for viewing (default: 2 for panels under 200 px, else 1)",
    )
    _add_render_views(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_run_options(p)
    p.set_defaults(func=cmd_render)


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
    from ..panels import DEFAULT_PANELS, PANELS

    p.add_argument(
        "--panels",
        default=",".join(DEFAULT_PANELS),
        help=f"comma-separated panels from {','.join(PANELS)} (flow: the optical-flow "
        "baseline's prediction; motion: the flow the model warps the last frame along)",
    )
    p.add_argument("--gif", action="store_true", help="also write a looping GIF beside the mp4")
    from ..encoding import DEFAULT_CRF

    p.add_argument(
        "--crf",
        type=crf_value,
        default=DEFAULT_CRF,
        metavar="N",
        help="x264 quality: lower is larger and closer to the drawn frames (18: visually "
        "lossless, measured in docs/watching.md); 0: lossless RGB, for measuring from the mp4 "
        "(browsers do not play it)",
    )


def cmd_render(args: argparse.Namespace) -> int:
    from ..outputs import check_output_path
    from ..rendering import check_render_path, render

    settings = _render_settings(args)  # option errors before the weights load
    if args.out is not None:  # and output errors (render checks again, with the weights used)
        inputs = (args.clip, *filter(None, [args.weights]))
        check_output_path(args.out, force=args.force, inputs=inputs)
        check_render_path(args.out)
    predictor = load_predictor(args, args.quiet)
    with stderr_progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("render", total=None, info="", unit="frames")

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, info=f"{done}/{total} frames")

        out = render(
            args.clip,
            predictor,
            args.out,
            settings,
            video_options(args),
            force=args.force,
            on_progress=on_progress,
            adapt=adapt_config(args),
        )
    print_path(out)
    return 0


def _render_settings(args: argparse.Namespace):
    from ..render_settings import RenderSettings

    return RenderSettings(
        panels=args.panels,
        scale=args.scale,
        horizon=args.horizon,
        extend=args.extend,
        gif=args.gif,
        crf=args.crf,
    )

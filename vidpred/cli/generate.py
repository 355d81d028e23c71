"""`vidpred generate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import VidpredError
from .console import stderr, stderr_progress
from .shared import HelpFormatter, field_type
from .validators import clip_count, clip_fps, clip_side, positive_int


def add_generate(sub) -> None:
    from ..synthetic import GENERATORS
    from ..train_config import TrainConfig

    p = sub.add_parser(
        "generate",
        help="write procedurally generated training videos",
        description="Write COUNT procedural clips as H.264 mp4s into FOLDER; e.g. 'natural' "
        "clips (textured layers, camera motion, occlusion, lighting drift, noise) to train "
        "on motion that looks like the world.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("folder", type=Path, help="output folder (created if missing)")
    p.add_argument("--kind", choices=sorted(GENERATORS), default="natural")
    p.add_argument("--count", type=clip_count, default=16)
    p.add_argument("--length", type=positive_int, default=200, help="frames per clip")
    p.add_argument("--height", type=clip_side, default=128)
    p.add_argument("--width", type=clip_side, default=160)
    p.add_argument("--fps", type=clip_fps, default=25.0)
    p.add_argument(
        "--seed", type=field_type(TrainConfig, "seed"), default=0, help="clip i uses seed + i"
    )
    p.add_argument("--force", action="store_true", help="overwrite existing clips")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..outputs import claim_output
    from ..synthetic import write_clips
    from ..video import max_decoded_bytes

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
    with stderr_progress(transient=True) as progress:
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

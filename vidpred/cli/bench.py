"""`vidpred bench`."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from .console import stderr_progress
from .shared import add_config_options, add_layout_option


def add_bench(sub) -> None:
    from ..training import TrainConfig

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
    add_config_options(p, TrainConfig, names=("device", "precision"))  # as `train` has them
    add_layout_option(p)
    p.add_argument("--compile", action="store_true", help="train through torch.compile")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import report_rows, run_bench

    with stderr_progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("bench", total=None, info="")
        result = run_bench(
            quick=args.quick,
            device=args.device,
            precision=args.precision,
            layout=args.layout,
            compile_model=args.compile,
            on_stage=lambda text: progress.update(task, info=text),
        )
    if args.json:
        from ..outputs import strict_json  # NaN would print as a bare NaN, which is not JSON

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

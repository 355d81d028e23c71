"""The ablation table: train one variant per row and seed, score each on held-out tails, print
markdown with the mean over seeds and their spread.

Every row changes one thing from the defaults, trains on TRAIN folders for the same budget
(`--minutes` of wall-clock or `--steps`), then `vidpred eval EVAL --tail 0.2 --json` scores
the last 20% of each evaluation video, which training never saw (`--val-fraction 0.2`).

    python benchmarks/ablation.py --train /tmp/natural/videos --eval /tmp/natural/videos \\
        --minutes 4 --seeds 0 1 2 --work /tmp/ablation

Runs go one after another (each wants the whole machine); a run whose eval JSON already
exists in WORK is read, not re-run, so an interrupted table can be finished later. With
`--steps` the result does not depend on how busy the machine is; with `--minutes` it does.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from vidpred.bench import inference_flops_per_frame
from vidpred.checkpoint import load_checkpoint

OLD = ["--base-flow", "none", "--no-blend", "--norm", "batch", "--ema", "0"]
VARIANTS: dict[str, list[str]] = {
    "defaults (damped flow start, pooled flow input, blend, sharp warp, BatchNorm, "
    "EMA 0.999, stem, 64x6, warp head, L1)": [],
    "previous defaults (copy-last start, no blend, BatchNorm, no EMA)": OLD,
    "no blend": ["--no-blend"],
    "GroupNorm instead of BatchNorm": ["--norm", "group"],
    "no EMA (the last step's weights)": ["--ema", "0"],
    "copy-last start (no base flow)": ["--base-flow", "none"],
    "peak lr 2e-3 instead of 1e-3": ["--lr", "2e-3"],
    "+ trend branch (Q = 48, 1 frame)": ["--trend", "48", "--trend-frames", "1"],
    "no stem (full resolution)": ["--no-stem"],
    "residual head instead of warp (no flow)": ["--head", "residual", "--base-flow", "none"],
    "MSE loss instead of L1": ["--loss", "mse"],
    "no normalisation": ["--norm", "none"],
    # Issue 21's candidates. Rows 12-14 were measured before the sharp warp became the
    # default (docs/results.md): "defaults" then meant the bilinear warp.
    "bilinear warp only (no sharp warp)": ["--no-sharp-warp"],
    "bilinear warp + L1 + gradient L1 loss": ["--no-sharp-warp", "--loss", "l1_grad"],
    "L1 + gradient L1 loss": ["--loss", "l1_grad"],
    "narrower trunk 48x4 (more steps in the same time)": ["--width", "48", "--depth", "4"],
    # Row 16 was measured while the DIS start was the default; it is the default since.
    "damped start (flow halved where it turned since the pair before)": [
        "--base-flow",
        "damped",
    ],
    "flow input at every pixel (not pooled to the trunk's resolution)": ["--no-pool-flow-input"],
}


def run_variant(extra: list[str], args: argparse.Namespace, index: int, seed: int) -> dict:
    out = args.work / f"v{index}-s{seed}.pt"
    result = args.work / f"v{index}-s{seed}.json"
    if not result.exists():
        budget = ["--steps", str(args.steps)]
        if args.minutes:
            budget = ["--time-limit", str(args.minutes)]
        train = [
            sys.executable,
            "-m",
            "vidpred",
            "-q",
            "train",
            *map(str, args.train),
            "--size",
            "96",
            "--frames",
            "4",
            "--val-fraction",
            "0.2",
            *budget,
            "--seed",
            str(seed),
            "--out",
            str(out),
            "--force",
            "--precision",
            args.precision,
            *args.extra,
            *extra,
        ]
        subprocess.run(train, check=True)
        evaluate = [
            sys.executable,
            "-m",
            "vidpred",
            "-q",
            "eval",
            *map(str, args.eval),
            "--weights",
            str(out),
            "--tail",
            "0.2",
            "--json",
            "--precision",
            args.precision,
            *args.extra_eval,
        ]
        text = subprocess.run(evaluate, check=True, capture_output=True, text=True).stdout
        result.write_text(text)
    report = json.loads(result.read_text())
    steps = json.loads(out.with_suffix(".jsonl").read_text().splitlines()[-1])["step"]
    model_config = load_checkpoint(out).model_config
    gflop = inference_flops_per_frame(model_config) / 1e9
    return {"report": report, "steps": steps, "gflop": gflop}


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:+.2f}"
    return f"{mean:+.2f} ({min(values):+.2f}..{max(values):+.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, nargs="+", required=True)
    parser.add_argument("--eval", type=Path, nargs="+", required=True)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("auto", "fp32", "bf16"),
        help="fp32 (default): what a CPU without AMX runs",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/vidpred-ablation"))
    parser.add_argument("--only", type=int, nargs="*", default=None, help="row numbers to run")
    parser.add_argument(
        "--extra",
        type=shlex.split,
        default=[],
        help="more `vidpred train` options for every row, as one string",
    )
    parser.add_argument(
        "--extra-eval",
        type=shlex.split,
        default=[],
        help="more `vidpred eval` options, as one string",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (name, extra) in enumerate(VARIANTS.items()):
        if args.only is None or i in args.only:
            runs = [run_variant(extra, args, i, seed) for seed in args.seeds]
            rows.append({"name": name, "runs": runs})
            print(f"done: {name}", file=sys.stderr, flush=True)
    first = rows[0]["runs"][0]["report"]
    videos = [Path(v["path"]).stem for v in first["videos"]]
    copy = first["mean"]["copy_last"]["psnr"]
    flow = first["mean"]["flow"]["psnr"]
    print(
        f"copy-last {copy:.2f} dB, flow baseline {flow:.2f} dB (means over videos); "
        f"seeds {' '.join(map(str, args.seeds))}: mean gain over the flow baseline "
        "(lowest..highest seed)\n"
    )
    print(
        "| variant | GFLOP/frame | steps | model PSNR | over copy-last | over flow | "
        + " | ".join(f"{v} over flow" for v in videos)
        + " |"
    )
    print("|---|---|---|---|---|---|" + "---|" * len(videos))
    for row in rows:
        reports = [r["report"] for r in row["runs"]]
        model = [r["mean"]["model"]["psnr"] for r in reports]
        cells = [
            spread(
                [v["model"]["psnr"] - v["flow"]["psnr"] for v in (r["videos"][j] for r in reports)]
            )
            for j in range(len(videos))
        ]
        steps = round(statistics.fmean(r["steps"] for r in row["runs"]))
        print(
            f"| {row['name']} | {row['runs'][0]['gflop']:.2f} | {steps} | "
            f"{statistics.fmean(model):.2f} | "
            f"{spread([m - copy for m in model])} | {spread([m - flow for m in model])} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    main()

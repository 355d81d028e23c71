"""The ablation table: train one variant per row, score each on held-out tails, print markdown.

Every row changes one thing from the defaults, trains on TRAIN folders for the same budget
(`--minutes` of wall-clock or `--steps`), then `vidpred eval EVAL --tail 0.2 --json` scores
the last 20% of each evaluation video, which training never saw (`--val-fraction 0.2`).

    python benchmarks/ablation.py --train /tmp/natural/videos --eval /tmp/natural/videos \\
        --minutes 4 --work /tmp/ablation

Rows run one after another (each wants the whole machine); a row whose eval JSON already
exists in WORK is read, not re-run, so an interrupted table can be finished later.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VARIANTS: dict[str, list[str]] = {
    "defaults (closeness only, stem, 64x6, BN + final BN, warp head, L1)": [],
    "+ period branch (P = 24, 1 frame)": ["--period", "24", "--period-frames", "1"],
    "+ trend branch (Q = 48, 1 frame)": ["--trend", "48", "--trend-frames", "1"],
    "no final BN (the paper's conv-units-ReLU-conv)": ["--no-final-norm"],
    "no batch norm at all": ["--no-batch-norm"],
    "no stem (full resolution)": ["--no-stem"],
    "residual head instead of warp": ["--head", "residual"],
    "MSE loss instead of L1": ["--loss", "mse"],
}


def run_variant(name: str, extra: list[str], args: argparse.Namespace, index: int) -> dict:
    out = args.work / f"v{index}.pt"
    result = args.work / f"v{index}.json"
    if not result.exists():
        budget = ["--time-limit", str(args.minutes)] if args.minutes else ["--steps", str(args.steps)]
        train = [sys.executable, "-m", "vidpred", "-q", "train", *map(str, args.train),
                 "--size", "96", "--frames", "4", "--val-fraction", "0.2", *budget,
                 "--seed", str(args.seed), "--out", str(out), "--force", *extra]
        subprocess.run(train, check=True)
        evaluate = [sys.executable, "-m", "vidpred", "-q", "eval", *map(str, args.eval),
                    "--weights", str(out), "--tail", "0.2", "--json"]
        text = subprocess.run(evaluate, check=True, capture_output=True, text=True).stdout
        result.write_text(text)
    report = json.loads(result.read_text())
    steps = json.loads((args.work / f"v{index}.jsonl").read_text().splitlines()[-1])["step"]
    return {"name": name, "report": report, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, nargs="+", required=True)
    parser.add_argument("--eval", type=Path, nargs="+", required=True)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/vidpred-ablation"))
    parser.add_argument("--only", type=int, nargs="*", default=None, help="row numbers to run")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (name, extra) in enumerate(VARIANTS.items()):
        if args.only is None or i in args.only:
            rows.append(run_variant(name, extra, args, i))
            print(f"done: {name}", file=sys.stderr, flush=True)
    videos = [Path(v["path"]).stem for v in rows[0]["report"]["videos"]]
    copy = rows[0]["report"]["mean"]["copy_last"]["psnr"]
    print(f"copy-last: {copy:.2f} dB (mean over videos)\n")
    print("| variant | steps | model PSNR | gain | " + " | ".join(videos) + " |")
    print("|---|---|---|---|" + "---|" * len(videos))
    for row in rows:
        report = row["report"]
        mean = report["mean"]["model"]["psnr"]
        per_video = [v["model"]["psnr"] - v["copy_last"]["psnr"] for v in report["videos"]]
        cells = " | ".join(f"{g:+.2f}" for g in per_video)
        print(f"| {row['name']} | {row['steps']} | {mean:.2f} | {mean - copy:+.2f} | {cells} |")


if __name__ == "__main__":
    main()

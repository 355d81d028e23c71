"""Prints a markdown table, one row per clip, of `vidpred eval --json` results side by side.

    python benchmarks/per_clip.py NAME=RESULT.json [NAME=RESULT.json ...]
    python benchmarks/per_clip.py --steps 1,2,4,8 NAME=RESULT.json ...   (eval --horizon 8)

Columns: copy-last and the flow baseline (from the first result), then for each result the
model's PSNR minus the flow baseline's, ungated and, where the result was gated (the default),
gated; a last row holds the means over clips and one the worst clip. With ``--steps``, the
results are rollouts (`vidpred eval --horizon N --json`): the flow baseline's PSNR at the
first and last step, then copy-last and each result (ungated and, where gated, gated) minus the
flow baseline carried as many steps, a column per step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    args = sys.argv[1:]
    steps = None
    if args[:1] == ["--steps"] and len(args) > 2:
        steps, args = [int(s) for s in args[1].split(",")], args[2:]
    runs = [arg.split("=", 1) for arg in args]
    if not runs or any(len(r) != 2 for r in runs):
        sys.exit(__doc__)
    results = [(name, json.loads(Path(path).read_text())) for name, path in runs]
    if steps:
        rollout_table(results, steps)
        return
    first = results[0][1]
    clips = [Path(v["path"]).stem for v in first["videos"]]
    header = ["clip", "copy-last", "flow"]
    columns = []  # (title, function of a video's result -> dB over flow)
    for name, result in results:
        gated = "model_ungated" in result["videos"][0]
        ungated_key = "model_ungated" if gated else "model"
        columns.append((f"{name}", result, ungated_key))
        if gated:
            columns.append((f"{name}, gated", result, "model"))
    header += [title for title, _, _ in columns]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    gains = {title: [] for title, _, _ in columns}
    for i, clip in enumerate(clips):
        video = first["videos"][i]
        cells = [clip, f"{video['copy_last']['psnr']:.2f}", f"{video['flow']['psnr']:.2f}"]
        for title, result, key in columns:
            v = result["videos"][i]
            assert Path(v["path"]).stem == clip, "the results must score the same clips"
            gain = v[key]["psnr"] - v["flow"]["psnr"]
            gains[title].append(gain)
            cells.append(f"{gain:+.2f}")
        print("| " + " | ".join(cells) + " |")
    mean = first["mean"]
    print(
        f"| **mean** | {mean['copy_last']['psnr']:.2f} | {mean['flow']['psnr']:.2f} | "
        + " | ".join(f"**{sum(g) / len(g):+.2f}**" for g in gains.values())
        + " |"
    )
    print("| worst clip | | | " + " | ".join(f"{min(g):+.2f}" for g in gains.values()) + " |")


def rollout_table(results: list[tuple[str, dict]], steps: list[int]) -> None:
    """Prints, per clip, the flow baseline's PSNR at the first and last of ``steps``,
    copy-last minus flow at each, then each result's model minus flow at each step: ungated
    and, where the result was gated (the default), gated."""
    first = results[0][1]
    clips = [Path(v["path"]).stem for v in first["videos"]]
    # (title, result, step, method): a column of method minus flow at step.
    columns = [("copy-last", first, step, "copy_last") for step in steps]
    for name, result in results:
        gated = "model_ungated" in result["videos"][0]["horizon"][0]
        for step in steps:
            columns.append((name, result, step, "model_ungated" if gated else "model"))
            if gated:
                columns.append((f"{name} gated", result, step, "model"))
    ends = sorted({steps[0], steps[-1]})
    header = ["clip", *(f"flow {s}" for s in ends), *(f"{t} {s}" for t, _, s, _ in columns)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    gains = {i: [] for i in range(len(columns))}
    for i, clip in enumerate(clips):
        flows = [first["videos"][i]["horizon"][s - 1]["flow"]["psnr"] for s in ends]
        cells = [clip, *(f"{f:.2f}" for f in flows)]
        for c, (_, result, step, method) in enumerate(columns):
            video = result["videos"][i]
            assert Path(video["path"]).stem == clip, "the results must score the same clips"
            row = video["horizon"][step - 1]
            gain = row[method]["psnr"] - row["flow"]["psnr"]
            gains[c].append(gain)
            cells.append(f"{gain:+.2f}")
        print("| " + " | ".join(cells) + " |")
    flows = [f"{first['horizon'][s - 1]['flow']['psnr']:.2f}" for s in ends]
    means = [f"**{sum(g) / len(g):+.2f}**" for g in gains.values()]
    print("| **mean** | " + " | ".join([*flows, *means]) + " |")
    worst = [f"{min(g):+.2f}" for g in gains.values()]
    print("| worst clip | " + " | ".join(["", ""][: len(ends)] + worst) + " |")


if __name__ == "__main__":
    main()

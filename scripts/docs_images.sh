#!/usr/bin/env bash
# Remakes docs/render-still.png and docs/gallery.png with vidpred's own commands on the
# shipped samples. Needs Chromium for the gallery screenshot.
#
#   scripts/docs_images.sh [WEIGHTS]    (default: the weights `vidpred render` picks itself)
set -euo pipefail
cd "$(dirname "$0")/.."
weights=()
if [ $# -ge 1 ]; then weights=(--weights "$1"); fi
renders="$(mktemp -d)/renders"
mkdir "$renders"
vidpred() { python3 -m vidpred -q "$@"; }

vidpred render samples/shapes.mp4 "${weights[@]}" --out "$renders/shapes.pred.mp4"
vidpred render samples/pendulum.mp4 "${weights[@]}" --out "$renders/pendulum.pred.mp4" \
  --horizon 4 --panels actual,predicted,error,flow
vidpred render samples/digits.mp4 "${weights[@]}" --out "$renders/digits.pred.mp4" --extend 24
vidpred gallery "$renders"

# The still: the middle frame of the three-panel shapes render, as decoded from its mp4.
python3 - "$renders/shapes.pred.mp4" docs/render-still.png <<'PY'
import sys

import cv2

from vidpred.video import read_video

video = read_video(sys.argv[1])
frame = video.frames[video.num_frames // 2]  # uint8 RGB (H, W, 3)
cv2.imwrite(sys.argv[2], cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
PY
# Near the end of each video: the digits render is then showing frames past the end.
python3 tests/chromium.py "$renders/index.html" docs/gallery.png --viewport --height 1000 --at 0.95
echo "renders and gallery left in $renders"
ls -l docs/render-still.png docs/gallery.png

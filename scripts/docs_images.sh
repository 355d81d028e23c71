#!/usr/bin/env bash
# Remakes docs/render-still.jpg and docs/gallery.png with vidpred's own commands: the still
# from Big Buck Bunny (CC BY 3.0, fetched by benchmarks/natural.sh) at its own size, the
# gallery from it and the shipped samples. Needs Chromium for the gallery screenshot.
#
#   scripts/docs_images.sh [WEIGHTS]    (default: the weights `vidpred render` picks itself)
#   BUNNY=path/to/bigbuckbunny.mp4 (default /tmp/nat/videos/bigbuckbunny.mp4)
set -euo pipefail
cd "$(dirname "$0")/.."
weights=()
if [ $# -ge 1 ]; then weights=(--weights "$1"); fi
renders="$(mktemp -d)/renders"
mkdir "$renders"
vidpred() { python3 -m vidpred -q "$@"; }

bunny="${BUNNY:-/tmp/nat/videos/bigbuckbunny.mp4}"
vidpred render "$bunny" "${weights[@]}" --out "$renders/bigbuckbunny.pred.mp4" \
  --max-side 288 --panels actual,predicted,error,motion
vidpred render samples/shapes.mp4 "${weights[@]}" --out "$renders/shapes.pred.mp4"
vidpred render samples/pendulum.mp4 "${weights[@]}" --out "$renders/pendulum.pred.mp4" \
  --horizon 4 --panels actual,predicted,error,flow
vidpred render samples/digits.mp4 "${weights[@]}" --out "$renders/digits.pred.mp4" --extend 24
vidpred gallery "$renders"

# The still: frame 80 of the Big Buck Bunny render, as decoded from its mp4.
python3 - "$renders/bigbuckbunny.pred.mp4" docs/render-still.jpg <<'PY'
import sys

import cv2

from vidpred.video import read_video

frame = read_video(sys.argv[1]).frames[80]  # uint8 RGB (H, W, 3)
cv2.imwrite(sys.argv[2], cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
PY
# Near the end of each video: the digits render is then showing frames past the end.
python3 tests/browser.py "$renders/index.html" docs/gallery.png --viewport --height 1000 --at 0.95
echo "renders and gallery left in $renders"
ls -l docs/render-still.jpg docs/gallery.png

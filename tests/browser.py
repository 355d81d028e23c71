"""Plays a page's videos in the system's headless Chromium and screenshots it, through
Playwright (its Python package only: the browser is the one installed, never downloaded).

Used by test_browser.py, and runnable to screenshot a gallery for the docs:

    python3 tests/browser.py renders/index.html docs/gallery.png --viewport
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

# The flags the gallery issue asks for. Playwright adds its own (a fresh profile per launch,
# the DevTools pipe); --headless is also its headless=True.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Returns the Chromium executable ($VIDPRED_CHROMIUM, else the first on PATH), or None."""
    explicit = os.environ.get("VIDPRED_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


# Waits for every <video> to have its current frame (readyState >= 2, HAVE_CURRENT_DATA),
# plays it until its clock moves, then leaves it playing from the middle of the clip.
# Returns one record per video.
PLAY_ALL_VIDEOS = """
async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const records = [];
  for (const v of document.querySelectorAll('video')) {
    const start = performance.now();
    while (v.readyState < 2 && !v.error && performance.now() - start < 20000) await sleep(25);
    const loaded = v.readyState;
    let playError = null;
    try { await v.play(); } catch (e) { playError = String(e); }
    const t0 = v.currentTime, p0 = performance.now();
    while (v.currentTime <= t0 && !v.error && performance.now() - p0 < 10000) await sleep(25);
    const advanced = v.currentTime - t0;
    if (isFinite(v.duration)) {
      v.currentTime = v.duration / 2;
      await new Promise(r => { v.onseeked = r; setTimeout(r, 5000); });
    }
    records.push({src: v.getAttribute('src'), readyState: loaded, duration: v.duration,
                  error: v.error ? v.error.code : null, playError, advanced,
                  width: v.videoWidth, height: v.videoHeight});
  }
  return records;
}
"""


# Moves every (playing) <video> at once to ``at`` of its duration, less ``lead`` seconds of
# the playback still to come before the screenshot.
SEEK_ALL_VIDEOS = """
([at, lead]) => Promise.all(
  [...document.querySelectorAll('video')].filter(v => isFinite(v.duration)).map(
    v => new Promise(r => {
      v.onseeked = r; setTimeout(r, 5000);
      v.currentTime = Math.max(0, v.duration * at - lead);
    })
  )
)
"""


def play_and_screenshot(
    page: str | Path,
    screenshot: str | Path,
    *,
    width: int = 1280,
    height: int = 900,
    full_page: bool = True,
    settle: float = 0.0,
    at: float | None = None,
) -> list[dict]:
    """Opens a local HTML page, plays its videos, saves a screenshot; returns the video records.

    Args:
        width, height: the viewport, in CSS pixels.
        full_page: capture the whole page, not only the viewport.
        settle: seconds of playback before the screenshot (Chromium fades out the player
            controls of a playing video after about three seconds).
        at: show every video at this fraction of its duration (they keep playing; the
            seek happens before ``settle``, as seeking brings the controls back).

    Raises:
        FileNotFoundError: no Chromium was found (``find_chromium``).
    """
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise FileNotFoundError("Chromium not found")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.goto(Path(page).resolve().as_uri(), wait_until="load")
            records = tab.evaluate(PLAY_ALL_VIDEOS)
            if at is not None:
                tab.evaluate(SEEK_ALL_VIDEOS, [at, settle])
            time.sleep(settle)
            tab.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            browser.close()
    return records


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Play a page's videos in headless Chromium "
        "and screenshot it; prints one JSON record per video."
    )
    parser.add_argument("page", help="local HTML file")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--viewport", action="store_true", help="only the viewport, not the page")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds of playback first")
    parser.add_argument("--at", type=float, default=None, help="show this fraction of each video")
    args = parser.parse_args()
    for record in play_and_screenshot(
        args.page,
        args.out,
        width=args.width,
        height=args.height,
        full_page=not args.viewport,
        settle=args.settle,
        at=args.at,
    ):
        print(json.dumps(record))

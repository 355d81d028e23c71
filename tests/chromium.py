"""Drives a headless Chromium over the DevTools protocol with the standard library only.

Used by test_browser.py, and runnable to screenshot a gallery for the docs:

    python3 tests/chromium.py renders/index.html docs/gallery.png --viewport

No selenium or websocket package is needed: the DevTools protocol is JSON over one
websocket, and the few lines of RFC 6455 that a local client needs are below.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

# The flags the gallery issue asks for; --user-data-dir and --remote-debugging-port are added
# per launch (a fresh profile every time, and the port Chromium picks).
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


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), text frames in, pings answered."""

    def __init__(self, url: str, timeout: float = 60.0):
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        # No Origin header: Chromium only checks the origin of clients that send one.
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head.decode(errors='replace')}")

    def _recv_exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            data += chunk
        return bytes(data)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        """Returns the next whole text message (fragments joined)."""
        message = bytearray()
        while True:
            first, second = self._recv_exact(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            mask = self._recv_exact(4) if second & 0x80 else None
            payload = self._recv_exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Chromium:
    """A headless Chromium with a fresh profile, driven through one page's DevTools socket.

    Use as a context manager; the browser process (and its profile) is gone afterwards.
    """

    def __init__(self, executable: str | None = None, startup_timeout: float = 60.0):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise FileNotFoundError("Chromium not found")
        self.startup_timeout = startup_timeout
        self._next_id = 0
        self.events: list[dict] = []

    def __enter__(self) -> Chromium:
        self.profile = tempfile.mkdtemp(prefix="vidpred-chromium-")
        self.log = open(Path(self.profile) / "chromium.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                self.executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            port = self._wait_for_port()
            self.ws = WebSocket(self._page_socket(port))
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.ws.close()
        finally:
            self._stop()

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _wait_for_port(self) -> int:
        """Returns the DevTools port Chromium chose (it writes it into the profile)."""
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Chromium exited with {self.proc.returncode}: {self.log_text()}"
                )
            try:
                return int(marker.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        raise TimeoutError(f"Chromium did not open its DevTools port: {self.log_text()}")

    def _page_socket(self, port: int) -> str:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", "/json/list")
                targets = json.loads(conn.getresponse().read())
            finally:
                conn.close()
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.05)
        raise TimeoutError("Chromium opened no page")

    def log_text(self) -> str:
        self.log.flush()
        return (Path(self.profile) / "chromium.log").read_text(errors="replace")[-2000:]

    def call(self, method: str, **params) -> dict:
        """Returns the result of one DevTools command; events that arrive meanwhile are kept."""
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for_event(self, method: str, timeout: float = 30.0) -> dict:
        """Returns the first event named ``method`` (already received or arriving)."""
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        self.ws.sock.settimeout(timeout)
        while True:
            message = json.loads(self.ws.recv())
            if message.get("method") == method:
                return message
            self.events.append(message)

    def open(self, url: str, width: int = 1280, height: int = 900) -> None:
        """Loads ``url`` in a width x height viewport and waits for its load event."""
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Emulation.setScrollbarsHidden", hidden=True)  # screenshots as wide as asked
        self.call("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """Returns the value of a JavaScript expression (promises are awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """Saves a PNG of the page (the whole page, not just the viewport) and returns its path."""
        params = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        data = self.call("Page.captureScreenshot", **params)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path


# Waits for every <video> to have its current frame (readyState >= 2, HAVE_CURRENT_DATA),
# plays it until its clock moves, then leaves it playing from the middle of the clip.
# Returns one record per video.
PLAY_ALL_VIDEOS = """
(async () => {
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
})()
"""


# Moves every (playing) <video> at once to AT of its duration, less LEAD seconds of the
# playback still to come before the screenshot.
SEEK_ALL_VIDEOS = """
Promise.all([...document.querySelectorAll('video')].filter(v => isFinite(v.duration)).map(
  v => new Promise(r => {
    v.onseeked = r; setTimeout(r, 5000);
    v.currentTime = Math.max(0, v.duration * AT - LEAD);
  })
))
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
    """
    with Chromium() as browser:
        browser.open(Path(page).resolve().as_uri(), width=width, height=height)
        records = browser.evaluate(PLAY_ALL_VIDEOS)
        if at is not None:
            browser.evaluate(SEEK_ALL_VIDEOS.replace("AT", str(at)).replace("LEAD", str(settle)))
        time.sleep(settle)
        browser.screenshot(screenshot, full_page=full_page)
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

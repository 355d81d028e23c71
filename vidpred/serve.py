"""A small HTTP server for a gallery folder (`vidpred gallery --serve`): its regular files,
with single byte ranges so that browsers can seek the mp4s, and nothing else.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from .errors import VidpredError
from .gallery import INDEX_NAME
from .outputs import open_regular

# A byte position in a Range header: 18 digits is an exabyte. Longer numbers are refused as
# malformed before int() (which raises past 4300 digits, and is slow well before).
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d{0,18})\s*-\s*(\d{0,18})\s*", re.IGNORECASE)


class BadRange(ValueError):
    """A Range header in bytes that is not a valid single range (answered 416)."""


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Returns the half-open span [start, stop) of a file of ``size`` bytes that an HTTP
    Range header asks for, or None when the header asks for something else than one byte
    range (another unit, or several ranges: the whole file is then sent, as RFC 9110 allows).
    A span with start >= size cannot be satisfied (416).

    Raises:
        BadRange: a bytes range that is malformed, backwards, or has numbers too large.
    """
    unit = re.match(r"\s*([\w-]+)\s*=", header)
    if not unit:
        raise BadRange(header)
    if unit.group(1).lower() != "bytes" or "," in header:
        return None
    match = _RANGE.fullmatch(header)
    if not match or match.groups() == ("", ""):
        raise BadRange(header)
    first, last = match.groups()
    if not first:  # "bytes=-N": the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n else (size, size)
    start = int(first)
    if last and int(last) < start:
        raise BadRange(header)
    return start, min(int(last) + 1, size) if last else size


def _allowed_hosts(address: tuple) -> set[str]:
    """Returns the Host header values a browser sends for a page on this server: another name
    means a page elsewhere resolved its own name to 127.0.0.1 (DNS rebinding)."""
    bound, port = address[0], address[1]
    names = {"127.0.0.1", "localhost", "[::1]", f"[{bound}]" if ":" in bound else bound}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:  # the default port is left out of Host
        hosts |= names
    return hosts


def _request_target(target: str, host_header: str | None) -> tuple[str, str] | None:
    """Returns (the host the request is for, lower-cased; the target's path) of an HTTP request
    target, or None for a target that names no file (``*``, ``host:port``, another scheme).

    In origin-form (``/a.mp4``) the Host header names the host; in absolute-form
    (``http://host:port/a.mp4``) the target's authority does and the Host header is ignored
    (RFC 9112, section 3.2.2), so ``GET http://evil.example/a.mp4`` is for evil.example
    whatever Host says.
    """
    if target.startswith("/"):
        # Not urlsplit: it would read "//evil.example/a.mp4" as a host too.
        return (host_header or "").strip().lower(), target.partition("?")[0].partition("#")[0]
    parts = urlsplit(target)
    if parts.scheme.lower() != "http" or not parts.netloc:
        return None
    return parts.netloc.lower(), parts.path or "/"


class GalleryRequestHandler(SimpleHTTPRequestHandler):
    """Serves the regular files of one folder, with single byte ranges: browsers fetch and
    seek mp4s with Range requests, and some (Safari) will not play a video without them.

    Stricter than ``http.server``: only for a Host header (or an absolute-form target's
    authority) naming this machine (DNS rebinding), no directory listings, no hidden files,
    nothing a symbolic link leads out of the folder, and no FIFOs or devices (a FIFO blocks a
    thread, /dev/zero never ends).
    """

    # A client that connects and says nothing would otherwise hold its thread forever.
    timeout = 60
    _span: tuple[int, int] | None = None
    _target_path = "/"  # the path of the request's target, set by send_head

    def send_head(self):
        self._span = None
        target = _request_target(self.path, self.headers.get("Host"))
        if target is None:
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request target")
            return None
        host, self._target_path = target
        if host not in _allowed_hosts(self.server.server_address):
            self.send_error(
                HTTPStatus.FORBIDDEN,
                "Host not allowed",
                "This server answers only for 127.0.0.1, localhost or [::1] on its port.",
            )
            return None
        opened = self._open_file()
        if opened is None:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        f, real, size, mtime = opened
        try:
            span = byte_range(self.headers["Range"], size) if "Range" in self.headers else None
        except BadRange:
            span = (size, size)
        if span is not None and span[0] >= size:
            f.close()
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        start, stop = span or (0, size)
        f.seek(start)
        self._span = span
        self.send_response(HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(str(real)))
        if span:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Last-Modified", self.date_time_string(int(mtime)))
        self.end_headers()
        return f

    def _open_file(self):
        """Returns (open file, real path, size, mtime) for the request's path, or None where
        it must not be served: outside the folder once links are followed, hidden, a folder
        (the folder itself means its index.html) or anything but a regular file."""
        root = Path(self.directory)
        try:
            # Bytes, then the file system's decoding: a name that is not UTF-8 still matches.
            parts = os.fsdecode(unquote_to_bytes(self._target_path)).split("/")
            parts = [p for p in parts if p] or [INDEX_NAME]
            if any(p in (".", "..") or p.startswith(".") for p in parts):
                return None
            real = Path(os.path.realpath(root.joinpath(*parts)))
            inside = real.relative_to(root)  # ValueError: a link led out of the folder
            if any(p.startswith(".") for p in inside.parts):
                return None
            # follow=False: the real path has no link left; one swapped in since is refused.
            f = open_regular(real, follow=False)
        except (OSError, ValueError):  # ValueError: a NUL byte, or not inside the folder
            return None
        st = os.fstat(f.fileno())
        return f, real, st.st_size, st.st_mtime

    def list_directory(self, path):  # never reached from send_head; kept shut regardless
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        if self._span is None:
            return super().copyfile(source, outputfile)
        left = self._span[1] - self._span[0]
        while left > 0:
            block = source.read(min(left, 1 << 16))
            if not block:
                break
            outputfile.write(block)
            left -= len(block)


class GalleryServer(ThreadingHTTPServer):
    """Threads for each request; a client that hangs up mid-reply (a browser seeking in a
    video drops its last range request) is normal, not a traceback on the terminal."""

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def serve(folder: str | Path, port: int = 8000) -> ThreadingHTTPServer:
    """Returns an HTTP server for ``folder`` on 127.0.0.1 (not yet serving: call serve_forever).

    Raises:
        VidpredError: the port is out of range or cannot be listened on.
    """
    if not 0 <= port <= 65535:
        raise VidpredError(f"--port {port}: must be 0 to 65535 (0 picks a free port)")
    # The real path: every request's real path is checked against it.
    root = os.path.realpath(folder)
    handler = functools.partial(GalleryRequestHandler, directory=root)
    try:
        return GalleryServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise VidpredError(f"--port {port}: cannot listen on 127.0.0.1 ({e.strerror})") from e

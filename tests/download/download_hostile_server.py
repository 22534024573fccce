"""A hostile HTTP server on 127.0.0.1 for the downloader tests.

Each path is one misbehaviour a web crawl meets (slow answers, 500 then 200, 429 with
Retry-After, redirect chains and loops, redirects into the private network, truncated
JPEGs, wrong Content-Types, decompression bombs, oversized bodies dripped slowly,
X-Robots-Tag opt-outs, gzip). Every request is logged with its time so tests can
check what was (and was not) fetched.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

DEMO_IMAGES = Path(__file__).resolve().parents[2] / "curation" / "demo" / "data" / "images"


def jpeg_bytes() -> bytes:
    return (DEMO_IMAGES / "astronaut_b.jpg").read_bytes()  # 268 x 384


def make_png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def rotated_jpeg() -> bytes:
    """A 40 x 20 JPEG whose EXIF says 'rotate 90' (orientation 6): shown as 20 x 40."""
    img = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


class HostileServer:
    """Threaded server; ``requests`` counts paths, ``times`` logs (path, monotonic)."""

    def __init__(self, slow_s: float = 2.0) -> None:
        self.slow_s = slow_s
        self.requests: Counter[str] = Counter()
        self.times: list[tuple[str, float]] = []
        self.active = 0
        self.max_active: Counter[str] = Counter()
        self.drip_sent = 0
        self.user_agents: dict[str, str] = {}
        self.lock = threading.Lock()
        self.jpeg = jpeg_bytes()
        self.bodies = {
            "/bomb.png": make_png((4000, 4000), "1"),  # 16 Mpx, a few KB
            "/huge-bomb.png": make_png((20000, 20000), "1"),  # past Pillow's own limit
            "/tiny.png": make_png((10, 10)),
            "/rotated.jpg": rotated_jpeg(),
        }
        handler = _make_handler(self)
        server_cls = type("_Server", (ThreadingHTTPServer,), {"request_queue_size": 256})
        self.httpd = server_cls(("127.0.0.1", 0), handler)  # backlog 5 drops SYNs
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(owner: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            path = self.path.split("?")[0]
            with owner.lock:
                owner.requests[path] += 1
                owner.times.append((path, time.monotonic()))
                owner.active += 1
                owner.max_active[path.rsplit("/", 1)[0]] = max(
                    owner.max_active[path.rsplit("/", 1)[0]], owner.active)
                count = owner.requests[path]
                owner.user_agents[path] = self.headers.get("User-Agent", "")
            try:
                _route(self, owner, path, count)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with owner.lock:
                    owner.active -= 1

    return Handler


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes = b"",
          ctype: str | None = "image/jpeg", headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    if ctype:
        h.send_header("Content-Type", ctype)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _redirect(h: BaseHTTPRequestHandler, location: str | None, status: int = 302) -> None:
    _send(h, status, b"", None, {"Location": location} if location else {})


def _route(h: BaseHTTPRequestHandler, o: HostileServer, path: str, count: int) -> None:
    jpeg = o.jpeg
    if path.startswith("/ok/") or path == "/ok.jpg":
        _send(h, 200, jpeg)
    elif path.startswith("/slowish/"):
        time.sleep(0.2)
        _send(h, 200, jpeg)
    elif path == "/slow":
        time.sleep(o.slow_s)
        _send(h, 200, jpeg)
    elif path == "/500-then-200":
        _send(h, 500, b"oops", "text/plain") if count == 1 else _send(h, 200, jpeg)
    elif path == "/always-503":
        _send(h, 503, b"down", "text/plain")
    elif path == "/429-then-200":
        if count == 1:
            _send(h, 429, b"", "text/plain", {"Retry-After": "1"})
        else:
            _send(h, 200, jpeg)
    elif path == "/429-long":
        _send(h, 429, b"", "text/plain", {"Retry-After": "3600"})
    elif path in ("/404", "/403"):
        _send(h, int(path[1:]), b"no", "text/html")
    elif path.startswith("/chain/"):
        n = int(path.rsplit("/", 1)[1])
        _redirect(h, f"/chain/{n - 1}") if n > 0 else _send(h, 200, jpeg)
    elif path in ("/loop/a", "/loop/b"):
        _redirect(h, "/loop/b" if path.endswith("a") else "/loop/a", 301)
    elif path == "/to-metadata":
        _redirect(h, "http://169.254.169.254/latest/meta-data/")
    elif path == "/to-private":
        _redirect(h, "http://10.0.0.1/image.jpg", 307)
    elif path == "/to-ftp":
        _redirect(h, "ftp://127.0.0.1/image.jpg")
    elif path == "/no-location":
        _redirect(h, None)
    else:
        _route_content(h, o, path)


def _route_content(h: BaseHTTPRequestHandler, o: HostileServer, path: str) -> None:
    jpeg = o.jpeg
    if path == "/truncated.jpg":
        _send(h, 200, jpeg[: len(jpeg) // 2])
    elif path == "/html-page":
        _send(h, 200, b"<!doctype html><html><body>" + b"x" * 5000, "text/html")
    elif path == "/jpeg-as-text":
        _send(h, 200, jpeg, "text/plain")
    elif path == "/garbage-as-jpeg":
        _send(h, 200, bytes(range(256)) * 20)
    elif path in o.bodies:
        _send(h, 200, o.bodies[path], "image/png" if path.endswith(".png") else None)
    elif path == "/declared-huge":
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Content-Length", str(50 * 1024 * 1024))
        h.end_headers()
        h.wfile.write(jpeg)
    elif path == "/drip-huge":
        _drip(h, o)
    elif path in ("/noai", "/noimageai-for-us", "/noai-for-other-bot"):
        tag = {"/noai": "noai", "/noimageai-for-us": "vlmcurationbot: noimageai",
               "/noai-for-other-bot": "otherbot: noai, noimageai"}[path]
        _send(h, 200, jpeg, "image/jpeg", {"X-Robots-Tag": tag})
    elif path == "/gzip.jpg":
        _chunked_gzip(h, jpeg)
    elif path == "/reset":
        h.close_connection = True
        h.connection.close()
    else:
        _send(h, 404, b"", "text/plain")


def _drip(h: BaseHTTPRequestHandler, o: HostileServer) -> None:
    """16 KB every 10 ms, no Content-Length, 8 MB in all (5 s to read it all)."""
    h.send_response(200)
    h.send_header("Content-Type", "image/jpeg")
    h.send_header("Connection", "close")
    h.end_headers()
    h.close_connection = True
    chunk = b"\xff\xd8\xff" + b"\x00" * (16 * 1024 - 3)
    for _ in range(512):
        h.wfile.write(chunk)
        h.wfile.flush()
        with o.lock:
            o.drip_sent += len(chunk)
        time.sleep(0.01)


def _chunked_gzip(h: BaseHTTPRequestHandler, body: bytes) -> None:
    """Content-Encoding gzip over Transfer-Encoding chunked."""
    packed = gzip.compress(body)
    h.send_response(200)
    h.send_header("Content-Type", "image/jpeg")
    h.send_header("Content-Encoding", "gzip")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for i in range(0, len(packed), 1000):
        part = packed[i:i + 1000]
        h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
    h.wfile.write(b"0\r\n\r\n")

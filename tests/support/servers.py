"""Test HTTP servers on 127.0.0.1 with switchable faults and a request log."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from curation.http_server import LoopbackHTTPServer


class FlakyServer:
    """Serves files from ``root``; while ``broken`` is true, paths containing
    ``flaky`` answer 503. Every request path is logged."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.broken = True
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                owner.requests.append(self.path)
                name = self.path.split("?")[0].replace("flaky-", "").lstrip("/")
                target = owner.root / name
                if owner.broken and "flaky" in self.path:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not target.is_file() or ".." in name:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = target.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FlakyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

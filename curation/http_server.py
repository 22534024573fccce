"""A small threaded HTTP server on 127.0.0.1 serving a folder: used by the demo and
the tests (real HTTP over loopback, never another address)."""

from __future__ import annotations

import functools
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    delay_s = 0.0

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.delay_s:
            time.sleep(self.delay_s)
        super().do_GET()


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Threaded server with a backlog deep enough for a downloader with many requests
    in flight (the default of 5 drops connections)."""

    request_queue_size = 256
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gives up (timeout, reset) is normal here, not a server error.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class StaticServer:
    """Serve ``root`` on 127.0.0.1 at a free port, in a daemon thread."""

    def __init__(self, root: str | Path, delay_s: float = 0.0) -> None:
        """``delay_s`` slows every response (tests that must catch a run mid-way)."""
        cls = type("_Handler", (_QuietHandler,), {"delay_s": delay_s})
        handler = functools.partial(cls, directory=str(root))
        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

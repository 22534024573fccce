"""Load with injected faults: a few thousand documents against a local server that
resets connections, answers 5xx, or stalls. Every image ends ok or with a reason,
every document reaches the shards or the drop table."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler

import pyarrow.parquet as pq
from PIL import Image

from curation.http_server import LoopbackHTTPServer
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline

N_DOCS = 2000


def fault_of(path: str) -> str:
    """Deterministic fault per URL: ~5% each of reset, 500, 503-once, stall."""
    kind = zlib.crc32(path.encode()) % 20
    return {0: "reset", 1: "error", 2: "flaky", 3: "stall"}.get(kind, "ok")


class FaultServer:
    def __init__(self) -> None:
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (120, 30, 200)).save(buf, "JPEG")
        body = buf.getvalue()
        seen: set[str] = set()
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fault = fault_of(self.path)
                if fault == "reset":  # RST instead of a response
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                with lock:
                    first = self.path not in seen
                    seen.add(self.path)
                if fault == "error" or (fault == "flaky" and first):
                    self.send_response(500 if fault == "error" else 503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "stall":
                    time.sleep(3)
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_every_image_and_document_accounted_under_faults(ray_session, tmp_path):
    server = FaultServer()
    try:
        urls = []
        with (tmp_path / "docs.jsonl").open("w") as f:
            for i in range(N_DOCS):
                images = [f"{server.base_url}/img/{i}-{j}.jpg" for j in range(1 + i % 3)]
                urls.extend(images)
                f.write(json.dumps({"url": f"https://example.org/{i}",
                                    "text_list": [f"sentence {k} of {i}" for k in range(3)],
                                    "image_info": [{"raw_url": u} for u in images]}) + "\n")
        pipeline = parse_pipeline({
            "name": "load", "ingest": {"docs_per_unit": 250},
            "stages": [{"download": {"allow_hosts": ["127.0.0.1"], "timeout_s": 1.0,
                                     "connect_timeout_s": 1.0, "max_retries": 1,
                                     "backoff_base_s": 0.01, "per_host_rps": 0,
                                     "per_host_concurrency": 64}}]})
        totals = run_pipeline(pipeline, [str(tmp_path / "docs.jsonl")],
                              str(tmp_path / "out"), progress=lambda _: None)
    finally:
        server.close()

    assert totals["images_in"] == len(urls) == sum(totals["image_status"].values())
    expected = Counter()
    for u in urls:
        fault = fault_of(u.split(server.base_url, 1)[1])
        expected[{"ok": "ok", "flaky": "ok", "error": "http_5xx", "stall": "timeout",
                  "reset": "connection_error"}[fault]] += 1
    assert totals["image_status"] == dict(expected)
    assert totals["documents_ingested"] == N_DOCS
    dropped = sum(totals["documents_dropped"].values())
    assert totals["documents_written"] + dropped == N_DOCS
    out = tmp_path / "out"
    assert pq.read_table(out / "manifest").num_rows == totals["documents_written"]
    assert pq.read_table(out / "drops").num_rows == dropped

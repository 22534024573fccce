"""Politeness across a whole run: `curate run`'s pipeline (on the session's Ray, all
CPUs, many units in flight) against loopback servers that record, per host, the most
requests in flight and the most started in any 1 s window. Also DNS failures end to
end (a fake resolver through the config hook) and --retry-failed on them.

Hosts: 127.0.0.1, 127.0.0.2 and 127.0.0.3 are distinct host names to the downloader
(all of 127.0.0.0/8 is loopback on Linux; one server is bound to each address) and
``ok.test`` is a fourth, resolved to 127.0.0.1 by the fake resolver. Servers tell hosts
apart by the Host header, i.e. by the name the downloader was given.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler

import pytest
from PIL import Image

from curation.http_server import LoopbackHTTPServer
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
PER_HOST = 30
CONCURRENCY, RPS = 2, 10.0
HOLD_S = 0.25  # each answer takes this long, so requests pile up behind the limits


class CountingServers:
    """One threaded server per loopback address, sharing one set of counters. A
    request counts as in flight from its arrival until just before its answer is
    written, i.e. within the time the client holds it."""

    def __init__(self) -> None:
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (20, 120, 200)).save(buf, "JPEG")
        body = buf.getvalue()
        self.lock = threading.Lock()
        self.active: dict[str, int] = defaultdict(int)
        self.max_active: dict[str, int] = defaultdict(int)
        self.starts: dict[str, list[float]] = defaultdict(list)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                host = self.headers.get("Host", "").rsplit(":", 1)[0]
                with owner.lock:
                    owner.starts[host].append(time.monotonic())
                    owner.active[host] += 1
                    owner.max_active[host] = max(owner.max_active[host], owner.active[host])
                time.sleep(HOLD_S)
                with owner.lock:
                    owner.active[host] -= 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.servers = [LoopbackHTTPServer((HOSTS[0], 0), Handler)]
        port = self.servers[0].server_address[1]
        self.servers += [LoopbackHTTPServer((h, port), Handler) for h in HOSTS[1:]]
        self.port = port
        for srv in self.servers:
            threading.Thread(target=srv.serve_forever, daemon=True).start()

    def most_started_in_one_second(self, host: str) -> int:
        times = sorted(self.starts[host])
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def close(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


def _docs(port: int) -> list[dict]:
    urls = [f"http://{h}:{port}/img/{i}.jpg" for i in range(PER_HOST) for h in HOSTS]
    urls += [f"http://ok.test:{port}/img/{i}.jpg" for i in range(4)]
    urls += [f"http://nx.test:{port}/img/{i}.jpg" for i in range(3)]
    urls += [f"http://flaky.test:{port}/img/{i}.jpg" for i in range(2)]
    return [{"url": f"https://example.org/{i}", "text_list": ["a sentence"],
             "image_info": [{"raw_url": u}]} for i, u in enumerate(urls)]


PIPELINE = {"name": "polite", "ingest": {"docs_per_unit": 6},
            "stages": [{"download": {
                "allow_hosts": ["127.0.0.0/8"], "per_host_concurrency": CONCURRENCY,
                "per_host_rps": RPS, "getaddrinfo": "curation_fake_dns:getaddrinfo",
                "max_retries": 1, "backoff_base_s": 0.01}}]}


@pytest.fixture(scope="module")
def runs(ray_session, fake_dns, tmp_path_factory):
    """The run, then `--retry-failed` once flaky.test resolves; totals of both."""
    tmp = tmp_path_factory.mktemp("polite")
    servers = CountingServers()
    try:
        (tmp / "docs.jsonl").write_text(
            "".join(json.dumps(d) + "\n" for d in _docs(servers.port)))
        cfg, inputs, out = parse_pipeline(PIPELINE), [str(tmp / "docs.jsonl")], str(tmp / "o")
        fake_dns({"ok.test": "127.0.0.1", "nx.test": "nxdomain", "flaky.test": "again"})
        first = run_pipeline(cfg, inputs, out, progress=lambda _: None)
        fetched = {h: len(t) for h, t in servers.starts.items()}
        fake_dns({"ok.test": "127.0.0.1", "nx.test": "nxdomain", "flaky.test": "127.0.0.1"})
        again = run_pipeline(cfg, inputs, out, progress=lambda _: None, retry_failed=True)
        refetched = {h: len(t) - fetched.get(h, 0) for h, t in servers.starts.items()}
        yield servers, first, again, {h: n for h, n in refetched.items() if n}
    finally:
        servers.close()


def test_per_host_limits_hold_across_the_run(runs):
    servers, first, _, _ = runs
    assert first["units"] >= 15  # many units, run by tasks on every CPU
    assert set(servers.starts) == {*HOSTS, "ok.test", "flaky.test"}
    for host in HOSTS:
        assert len(servers.starts[host]) == PER_HOST
    for host in servers.starts:
        assert servers.max_active[host] <= CONCURRENCY, host
        assert servers.most_started_in_one_second(host) <= RPS, host
    assert max(servers.max_active.values()) == CONCURRENCY  # the cap was reached


def test_dns_failures_end_to_end(runs):
    _, first, _, _ = runs
    assert first["image_status"] == {"ok": 3 * PER_HOST + 4, "dns_error": 3,
                                     "dns_temporary": 2}
    assert first["documents_dropped"] == {"download:no_images": 5}


def test_retry_failed_refetches_only_the_temporary_dns_failures(runs):
    _, first, again, refetched = runs
    assert refetched == {"flaky.test": 2}
    assert again["image_status"] == {"ok": 3 * PER_HOST + 6, "dns_error": 3}
    assert again["documents_dropped"] == {"download:no_images": 3}
    assert again["documents_written"] == first["documents_written"] + 2

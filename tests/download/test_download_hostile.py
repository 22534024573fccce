"""The downloader against a hostile HTTP server on 127.0.0.1: every misbehaviour ends
in its exact status, and the whole batch finishes."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from download_hostile_server import HostileServer  # noqa: E402

from curation.document import Document, ImageRecord, Provenance  # noqa: E402
from curation.download.config import DownloadConfig  # noqa: E402
from curation.download.stage import DownloadStage  # noqa: E402

# Short bounds keep the file fast; each case still exercises the real code path.
FAST = dict(allow_hosts=["127.0.0.1"], timeout_s=1.5, connect_timeout_s=1.0,
            max_retries=2, backoff_base_s=0.05, max_retry_after_s=5, per_host_rps=0,
            per_host_concurrency=64, max_bytes=200 * 1024, max_pixels=1_000_000)

CASES = {
    "/ok.jpg": "ok",
    "/slow": "timeout",
    "/500-then-200": "ok",
    "/always-503": "http_5xx",
    "/429-then-200": "ok",
    "/429-long": "http_429",
    "/404": "http_404",
    "/403": "http_403",
    "/chain/3": "ok",
    "/chain/9": "too_many_redirects",
    "/loop/a": "too_many_redirects",
    "/to-metadata": "blocked_address",
    "/to-private": "blocked_address",
    "/to-ftp": "unsupported_scheme",
    "/no-location": "bad_redirect",
    "/truncated.jpg": "decode_error",
    "/html-page": "not_an_image",
    "/jpeg-as-text": "ok",
    "/garbage-as-jpeg": "not_an_image",
    "/bomb.png": "too_many_pixels",
    "/huge-bomb.png": "too_many_pixels",
    "/declared-huge": "too_large",
    "/drip-huge": "too_large",
    "/noai": "opted_out",
    "/noimageai-for-us": "opted_out",
    "/noai-for-other-bot": "ok",
    "/gzip.jpg": "ok",
    "/reset": "connection_error",
    "/tiny.png": "ok",
    "/rotated.jpg": "ok",
}


@pytest.fixture(scope="module")
def run(net_guard):
    """One batch holding every case, downloaded concurrently by one stage call; also
    what the network guard refused meanwhile (connections beyond loopback)."""
    with HostileServer(slow_s=2.5) as server:
        images = [ImageRecord(url=server.url(p)) for p in CASES]
        doc = Document("d0", "mmc4", None, ["text"], images, Provenance("hostile.jsonl", 1))
        stage = DownloadStage(DownloadConfig(**FAST))
        mark = net_guard.mark()
        out = stage.process([doc])
        server.refused = net_guard.since(mark)
        yield server, {p: im for p, im in zip(CASES, out[0].images)}


@pytest.mark.parametrize("path", list(CASES))
def test_exact_status(run, path):
    _, by_path = run
    im = by_path[path]
    assert im.status == CASES[path], im.metadata
    if im.status == "ok":
        assert im.data and im.sha256 == hashlib.sha256(im.data).hexdigest()
        assert im.num_bytes == len(im.data) and im.dropped_by is None
    else:
        assert im.data is None and im.dropped_by == "download"
        assert im.metadata["download_error"].startswith(im.url)  # names the URL


def test_retries_only_what_is_retryable(run):
    server, _ = run
    assert server.requests["/500-then-200"] == 2
    assert server.requests["/always-503"] == 3  # 1 + max_retries
    assert server.requests["/slow"] == 3
    # aiohttp itself re-sends once when a reused keep-alive connection is closed.
    assert 3 <= server.requests["/reset"] <= 6
    assert server.requests["/404"] == 1 and server.requests["/403"] == 1
    assert server.requests["/429-long"] == 1  # Retry-After beyond the cap: give up now
    assert server.requests["/truncated.jpg"] == 1


def test_retry_after_is_honoured(run):
    server, _ = run
    times = [t for p, t in server.times if p == "/429-then-200"]
    assert len(times) == 2 and times[1] - times[0] >= 0.95


def test_blocked_redirect_never_connects_elsewhere(run):
    server, by_path = run
    # The hops to 169.254.169.254 and 10.0.0.1 were refused by policy, not by a failed
    # connection: the network guard saw no attempt to connect anywhere but loopback.
    assert by_path["/to-metadata"].metadata["download_error"].endswith(
        " -> http://169.254.169.254/latest/meta-data/")
    assert by_path["/to-private"].metadata["download_error"].endswith(
        " -> http://10.0.0.1/image.jpg")
    assert server.requests["/to-metadata"] == server.requests["/to-private"] == 1
    assert server.refused == []


def test_loop_stops_at_first_repeat(run):
    server, _ = run
    assert server.requests["/loop/a"] == 1 and server.requests["/loop/b"] == 1


def test_oversized_body_is_abandoned_early(run):
    server, _ = run
    assert server.drip_sent < 8 * 1024 * 1024  # the 8 MB body was never read to the end


def test_gzip_body_is_decoded_and_original_bytes_kept(run):
    server, by_path = run
    im = by_path["/gzip.jpg"]
    assert im.data == server.jpeg and im.mime == "image/jpeg"
    assert (im.width, im.height) == (im.original_width, im.original_height) == (268, 384)


def test_exif_orientation_applied(run):
    im = run[1]["/rotated.jpg"]
    assert (im.original_width, im.original_height) == (20, 40)
    assert (im.width, im.height) == (20, 40)


def test_redirect_chain_records_final_url(run):
    server, by_path = run
    assert by_path["/chain/3"].metadata["final_url"] == server.url("/chain/0")
    assert [server.requests[f"/chain/{i}"] for i in range(4)] == [1, 1, 1, 1]

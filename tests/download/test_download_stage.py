"""The download stage on documents: drops, text-only, shared URLs, politeness, retry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from download_hostile_server import HostileServer  # noqa: E402

from curation.document import Document, ImageRecord, Provenance  # noqa: E402
from curation.download.config import DownloadConfig  # noqa: E402
from curation.download.retry import reset_retryable  # noqa: E402
from curation.download.stage import DownloadStage  # noqa: E402

FAST = dict(allow_hosts=["127.0.0.1"], timeout_s=2.0, max_retries=1,
            backoff_base_s=0.05, per_host_rps=0)


def doc(i: int, urls: list[str]) -> Document:
    return Document(f"d{i}", "mmc4", None, ["a", "b"], [ImageRecord(url=u) for u in urls],
                    Provenance("in.jsonl", i + 1))


@pytest.fixture(scope="module")
def server():
    with HostileServer() as srv:
        yield srv


def test_documents_without_images_are_dropped_or_kept(server):
    docs = [doc(0, [server.url("/ok/0.jpg"), server.url("/404")]),
            doc(1, [server.url("/404"), server.url("/html-page")]),
            doc(2, [])]
    DownloadStage(DownloadConfig(**FAST)).process(docs)
    assert [d.drop_reason for d in docs] == [None, "no_images", None]
    assert docs[1].dropped_by == "download"
    assert [im.status for im in docs[1].images] == ["http_404", "not_an_image"]

    again = [doc(1, [server.url("/404")])]
    DownloadStage(DownloadConfig(keep_text_only=True, **FAST)).process(again)
    assert again[0].kept and again[0].images[0].status == "http_404"


def test_shared_urls_fetched_once_and_others_untouched(server):
    url = server.url("/ok/shared.jpg")
    done = ImageRecord(url=server.url("/ok/done.jpg"), status="ok", data=b"x")
    gone = ImageRecord(url=server.url("/ok/gone.jpg"), status="url_filter")
    dropped = doc(9, [server.url("/ok/dropped.jpg")])
    dropped.drop("dedup", "dedup")
    docs = [doc(0, [url, url]), doc(1, [url]), dropped]
    docs[0].images += [done, gone]
    DownloadStage(DownloadConfig(**FAST)).process(docs)
    assert server.requests["/ok/shared.jpg"] == 1
    assert all(im.status == "ok" and im.data for im in docs[0].images[:2] + docs[1].images)
    assert done.data == b"x" and gone.status == "url_filter"
    assert server.requests["/ok/done.jpg"] == server.requests["/ok/gone.jpg"] == 0
    assert server.requests["/ok/dropped.jpg"] == 0 and dropped.images[0].status == "pending"


def test_per_host_concurrency_is_bounded(server):
    urls = [server.url(f"/slowish/{i}.jpg") for i in range(8)]
    cfg = DownloadConfig(**{**FAST, "per_host_concurrency": 2})
    DownloadStage(cfg).process([doc(0, urls)])
    assert server.max_active["/slowish"] <= 2


def test_per_host_rate_is_bounded(server):
    urls = [server.url(f"/ok/rate-{i}.jpg") for i in range(6)]
    cfg = DownloadConfig(**{**FAST, "per_host_rps": 10.0, "per_host_concurrency": 1})
    DownloadStage(cfg).process([doc(0, urls)])
    times = sorted(t for p, t in server.times if p.startswith("/ok/rate-"))
    assert len(times) == 6 and times[-1] - times[0] >= 0.45  # 5 gaps of >= 0.1 s


def test_names_resolving_to_loopback_are_blocked_without_allow_list(server):
    url = server.url("/ok/named.jpg").replace("127.0.0.1", "localhost")
    d = doc(0, [url])
    DownloadStage(DownloadConfig(**{**FAST, "allow_hosts": []})).process([d])
    assert d.images[0].status == "blocked_address"
    assert server.requests["/ok/named.jpg"] == 0


def test_user_agent_carries_project_token(server):
    d = doc(0, [server.url("/ok/ua.jpg")])
    DownloadStage(DownloadConfig(**FAST)).process([d])
    assert server.user_agents["/ok/ua.jpg"].startswith("vlmcurationbot/")


def test_reset_retryable_then_rerun(server):
    docs = [doc(0, [server.url("/ok/a.jpg"), server.url("/404")]),
            doc(1, [server.url("/always-503")]),
            doc(2, [server.url("/404")])]
    stage = DownloadStage(DownloadConfig(**{**FAST, "max_retries": 0}))
    stage.process(docs)
    assert [d.drop_reason for d in docs] == [None, "no_images", "no_images"]
    assert reset_retryable(docs) == 1
    assert docs[1].kept and docs[1].images[0].status == "pending"
    assert docs[2].drop_reason == "no_images" and docs[0].images[1].status == "http_404"
    before = dict(server.requests)
    stage.process(docs)
    fetched = {p for p in server.requests if server.requests[p] != before.get(p, 0)}
    assert fetched == {"/always-503"}
    assert docs[1].drop_reason == "no_images" and docs[1].images[0].status == "http_5xx"

"""Politeness and resolution, pinned: defaults, the in-flight window, Retry-After
pausing a whole host (and only that host), backoff growth, the DNS cache TTL."""

from __future__ import annotations

import asyncio
import random
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from download_hostile_server import HostileServer  # noqa: E402

from curation.document import Document, ImageRecord, Provenance  # noqa: E402
from curation.download.config import DownloadConfig  # noqa: E402
from curation.download.fetch import Fetcher  # noqa: E402
from curation.download.policy import AddressPolicy  # noqa: E402
from curation.download.resolver import PolicyResolver, ResolveError  # noqa: E402
from curation.download.stage import DownloadStage  # noqa: E402

FAST = dict(allow_hosts=["127.0.0.1", "localhost"], timeout_s=3.0, backoff_base_s=0.05,
            per_host_rps=0)


def doc(urls: list[str]) -> Document:
    return Document("d", "mmc4", None, ["a"], [ImageRecord(url=u) for u in urls],
                    Provenance("in.jsonl", 1))


@pytest.fixture(scope="module")
def server():
    with HostileServer() as srv:
        yield srv


def test_defaults_are_polite():
    cfg = DownloadConfig()
    assert (cfg.per_host_concurrency, cfg.per_host_rps, cfg.max_in_flight) == (8, 20.0, 256)
    assert (cfg.max_retries, cfg.backoff_base_s, cfg.backoff_max_s) == (3, 0.5, 30.0)
    assert (cfg.dns_ttl_s, cfg.max_retry_after_s, cfg.allow_hosts) == (300.0, 60.0, [])


def test_in_flight_window_caps_requests(server):
    urls = [server.url(f"/slowish/w{i}.jpg") for i in range(9)]
    cfg = DownloadConfig(**{**FAST, "max_in_flight": 3, "per_host_concurrency": 64})
    d = doc(urls)
    DownloadStage(cfg).process([d])
    assert all(im.status == "ok" for im in d.images)
    assert 2 <= server.max_active["/slowish"] <= 3


def test_retry_after_pauses_the_whole_host_and_only_it(server):
    first = server.url("/429-then-200")  # sorts first: the first request to the host
    same = [server.url(f"/ok/paused-{i}.jpg") for i in range(2)]
    other = server.url("/ok/other-host.jpg").replace("127.0.0.1", "localhost")
    cfg = DownloadConfig(**{**FAST, "per_host_concurrency": 1})
    d = doc([first, *same, other])
    DownloadStage(cfg).process([d])
    assert [im.status for im in d.images] == ["ok"] * 4
    times = {p: t for p, t in server.times}  # last request per path
    told = min(t for p, t in server.times if p == "/429-then-200")
    for path in ("/ok/paused-0.jpg", "/ok/paused-1.jpg"):
        assert times[path] - told >= 0.95  # Retry-After: 1 held the host
    assert times["/ok/other-host.jpg"] < min(times["/ok/paused-0.jpg"],
                                             times["/ok/paused-1.jpg"])


def test_limiter_paces_starts_and_reschedules_waiters_after_a_pause():
    from curation.download.limits import PACING, HostLimiter

    async def scenario() -> tuple[list[float], float, float]:
        limiter = HostLimiter(concurrency=8, rps=20.0)
        loop = asyncio.get_running_loop()
        starts: list[float] = []

        async def request(host: str, log: list[float]) -> None:
            async with limiter.slot(host):
                log.append(loop.time())

        tasks = [asyncio.create_task(request("h", starts)) for _ in range(6)]
        await asyncio.sleep(0.01)  # the first has started, five hold later turns
        limiter.cool_down("h", 0.5)
        paused_at, other = loop.time(), []
        await asyncio.gather(*tasks, request("other", other))
        return starts, paused_at, other[0]

    starts, paused_at, other = asyncio.run(scenario())
    assert len(starts) == 6
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= PACING / 20.0 - 0.005  # never closer than the pace
    assert all(t >= paused_at + 0.5 - 0.005 for t in starts[1:])  # the pause held them
    assert other < starts[-1]  # another host was never paused


def test_backoff_doubles_with_jitter_and_is_capped():
    cfg = DownloadConfig(backoff_base_s=0.5, backoff_max_s=30.0)
    fetcher = Fetcher.__new__(Fetcher)
    fetcher.cfg, fetcher.rng = cfg, random.Random(0)
    for attempt, (low, high) in enumerate([(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0)]):
        waits = [fetcher._backoff(attempt) for _ in range(50)]
        assert low <= min(waits) and max(waits) <= high
    assert all(15.0 <= fetcher._backoff(10) <= 30.0 for _ in range(50))


def test_backoff_grows_between_real_retries(server):
    d = doc([server.url("/always-503")])
    cfg = DownloadConfig(**{**FAST, "max_retries": 3, "backoff_base_s": 0.2})
    DownloadStage(cfg).process([d])
    assert d.images[0].status == "http_5xx"
    times = sorted(t for p, t in server.times if p == "/always-503")
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 3
    for attempt, gap in enumerate(gaps):  # at least half of base * 2^attempt
        assert gap >= 0.2 * 2 ** attempt / 2 - 0.01


class _FakeDns:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.answers = {"ok.test": "127.0.0.1", "gone.test": "nxdomain",
                        "busy.test": "again"}

    def __call__(self, host, port=None, type=0, **kwargs):  # noqa: A002, ANN001
        self.calls.append(host)
        answer = self.answers[host]
        if answer in ("nxdomain", "again"):
            code = socket.EAI_NONAME if answer == "nxdomain" else socket.EAI_AGAIN
            raise socket.gaierror(code, answer)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, 0))]


def test_dns_cache_holds_for_its_ttl_and_not_longer():
    now = [1000.0]
    fake = _FakeDns()
    resolver = PolicyResolver(AddressPolicy(["ok.test"]), {}, ttl_s=300.0,
                              getaddrinfo=fake, clock=lambda: now[0])

    async def resolve(host: str) -> str:
        try:
            return ",".join(ip for _, ip in await resolver.addresses(host))
        except ResolveError as exc:
            return exc.reason

    async def scenario() -> list[str]:
        out = [await resolve("ok.test")]
        now[0] += 299.0
        out.append(await resolve("ok.test"))  # cached
        now[0] += 2.0
        out.append(await resolve("ok.test"))  # expired: asked again
        out += [await resolve("gone.test"), await resolve("gone.test")]  # cached too
        out += [await resolve("busy.test"), await resolve("busy.test")]  # never cached
        return out

    out = asyncio.run(scenario())
    assert out[:3] == ["127.0.0.1"] * 3
    assert out[3:] == ["dns_error", "dns_error", "dns_temporary", "dns_temporary"]
    assert fake.calls == ["ok.test", "ok.test", "gone.test", "busy.test", "busy.test"]


def test_concurrent_lookups_of_one_name_are_shared():
    fake = _FakeDns()
    resolver = PolicyResolver(AddressPolicy(["ok.test"]), {}, ttl_s=300.0,
                              getaddrinfo=fake)

    async def scenario() -> None:
        await asyncio.gather(*(resolver.addresses("ok.test") for _ in range(10)))

    asyncio.run(scenario())
    assert fake.calls == ["ok.test"]

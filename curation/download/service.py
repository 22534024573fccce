"""The download service: one long-lived fetcher that owns a set of hosts.

The runner starts a pool of these as async actors for a whole pipeline segment and
routes every URL to the actor that owns its host (``curation.services.route`` on the
host name). So the per-host concurrency cap, request rate, ``Retry-After`` pauses,
the DNS cache and the keep-alive connections hold for the whole run, across workers
and nodes, instead of being rebuilt for every batch. Decoding and resizing run in a
thread pool of ``decode_threads`` (Pillow releases the GIL), never on the event loop.

Plain Python, no Ray: the download stage runs the same class in-process when no
service is bound (unit tests, a plain loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import aiohttp
from yarl import URL

from curation.download import reasons
from curation.download.config import DownloadConfig
from curation.download.fetch import Fetcher
from curation.download.policy import AddressPolicy
from curation.download.resize import ImageResult, process_image
from curation.download.resolver import DnsCache, PolicyResolver
from curation.services import load_object

Outcome = tuple[ImageResult, str | None]  # result, final URL when redirected
ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8"


def host_key(url: str) -> str:
    """The politeness key of a URL: its lower-cased host name ("" when unparsable)."""
    try:
        return (URL(url).raw_host or "").lower().rstrip(".")
    except (ValueError, TypeError):
        return ""


class DownloadService:
    """Fetch, verify and resize images; ``fetch`` returns one Outcome per URL."""

    def __init__(self, config: dict[str, Any] | DownloadConfig,
                 dns_cache: DnsCache | None = None) -> None:
        self.cfg = (config if isinstance(config, DownloadConfig)
                    else DownloadConfig.model_validate(config))
        self.dns_cache: DnsCache = {} if dns_cache is None else dns_cache
        self.fetcher: Fetcher | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def start(self) -> None:
        cfg = self.cfg
        policy = AddressPolicy(cfg.allow_hosts)
        hook = load_object(cfg.getaddrinfo) if cfg.getaddrinfo else None
        resolver = PolicyResolver(policy, self.dns_cache, cfg.dns_ttl_s, getaddrinfo=hook)
        connector = aiohttp.TCPConnector(limit=0, resolver=resolver, use_dns_cache=False)
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": cfg.agent(), "Accept": ACCEPT},
            trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
        self._pool = concurrent.futures.ThreadPoolExecutor(
            cfg.decode_threads, thread_name_prefix="decode")
        self.fetcher = Fetcher(cfg, self._session, policy, resolver, process=self._decode)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    async def fetch(self, urls: list[str]) -> list[Outcome]:
        """Fetch and process ``urls`` concurrently; never raises."""
        return list(await asyncio.gather(*(self._one(u) for u in urls)))

    async def _decode(self, data: bytes) -> ImageResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, process_image, data, self.cfg)

    async def _one(self, url: str) -> Outcome:
        assert self.fetcher is not None, "start() first"
        fetched = await self.fetcher.fetch(url)
        final = fetched.final_url if fetched.final_url != url else None
        result = fetched.processed
        if fetched.reason != reasons.OK or result is None:
            reason = fetched.reason if fetched.reason != reasons.OK else reasons.FETCH_ERROR
            return ImageResult(reason, detail=fetched.detail), final
        if result.detail:
            result.detail = f"{url}: {result.detail}"
        return result, final

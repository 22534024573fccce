"""The ``download`` stage: every pending image of a batch fetched concurrently, then
verified and resized, each ending ``ok`` or with an exact reason code.

Runs as an ordinary (Ray) task: ``process_kept`` starts its own asyncio loop, fetches
all distinct URLs of the batch over one aiohttp session (many in flight, bounded per
host), and decodes in a small thread pool while the network keeps going. A document
whose images all failed is dropped as ``no_images`` unless ``keep_text_only``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp

from curation.document import IMAGE_OK, IMAGE_PENDING, Document, ImageRecord
from curation.download import reasons
from curation.download.config import DownloadConfig
from curation.download.fetch import Fetcher
from curation.download.policy import AddressPolicy
from curation.download.resize import ImageResult, process_image
from curation.download.resolver import DnsCache, PolicyResolver
from curation.stage import Stage

T = TypeVar("T")
Outcome = tuple[ImageResult, str | None]  # result, final URL when redirected
NO_IMAGES = "no_images"
_DETAIL_CHARS = 300


class DownloadStage(Stage):
    name = "download"
    Config = DownloadConfig
    config: DownloadConfig
    replayable = False  # never fetched twice: a later pass starts from its staged output
    removes_images = True

    def __init__(self, config: DownloadConfig | None = None) -> None:
        super().__init__(config)
        self._dns: DnsCache = {}  # per worker; survives between batches

    def process_kept(self, docs: list[Document]) -> None:
        pending = [im for d in docs for im in d.images if im.status == IMAGE_PENDING]
        urls = sorted({im.url for im in pending})
        if urls:
            results = run_coroutine(self.download_all(urls))
            for im in pending:
                apply_result(im, results[im.url], self.name)
        for doc in docs:
            if doc.images and not doc.kept_images and not self.config.keep_text_only:
                doc.drop(NO_IMAGES, self.name)

    async def download_all(self, urls: list[str]) -> dict[str, Outcome]:
        """Fetch and process ``urls`` concurrently; one result per URL, never raises."""
        cfg = self.config
        policy = AddressPolicy(cfg.allow_hosts)
        resolver = PolicyResolver(policy, self._dns, cfg.dns_ttl_s)
        connector = aiohttp.TCPConnector(limit=0, resolver=resolver, use_dns_cache=False)
        headers = {"User-Agent": cfg.agent(),
                   "Accept": "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8"}
        with concurrent.futures.ThreadPoolExecutor(cfg.decode_threads) as pool:
            async with aiohttp.ClientSession(connector=connector, headers=headers,
                                             trust_env=False,
                                             cookie_jar=aiohttp.DummyCookieJar()) as session:
                fetcher = Fetcher(cfg, session, policy, resolver)
                done = await asyncio.gather(*(self._one(fetcher, pool, u) for u in urls))
        return dict(zip(urls, done))

    async def _one(self, fetcher: Fetcher, pool: concurrent.futures.Executor,
                   url: str) -> Outcome:
        fetched = await fetcher.fetch(url)
        final = fetched.final_url if fetched.final_url != url else None
        if fetched.reason != reasons.OK or fetched.data is None:
            return ImageResult(fetched.reason, detail=fetched.detail), final
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(pool, process_image, fetched.data, self.config)
        if result.detail:
            result.detail = f"{url}: {result.detail}"
        return result, final


def apply_result(im: ImageRecord, outcome: Outcome, stage: str) -> None:
    """Copy one download outcome onto the image record (status, sizes, bytes)."""
    result, final_url = outcome
    im.original_width, im.original_height = result.original_width, result.original_height
    if final_url:
        im.metadata["final_url"] = final_url
    if result.reason != reasons.OK:
        im.drop(result.reason, stage)
        im.metadata["download_error"] = (result.detail or "")[:_DETAIL_CHARS]
        return
    im.status, im.dropped_by = IMAGE_OK, None
    im.metadata.pop("download_error", None)
    im.data, im.num_bytes, im.sha256 = result.data, len(result.data or b""), result.sha256
    im.width, im.height, im.mime = result.width, result.height, result.mime


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, or in a fresh thread when this thread already runs a loop
    (an async Ray actor, a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()

"""The ``download`` stage: every pending image of a batch fetched, verified and
resized, each ending ``ok`` or with an exact reason code.

On Ray the work is done by download actors (``services()``): the runner starts them
once per segment and binds a client that sends each URL to the actor owning its
host, so politeness, pauses, the DNS cache and keep-alive connections hold for the
whole run. The unit's task only sends URLs and waits, so it needs little CPU and many
units can be in flight while a slow host keeps a few of them waiting. Without bound
services (unit tests, a plain loop) the same ``DownloadService`` runs in-process for
the batch. A document whose images all failed is dropped as ``no_images`` unless
``keep_text_only``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from curation.document import IMAGE_OK, IMAGE_PENDING, Document, ImageRecord
from curation.download import reasons
from curation.download.config import DownloadConfig
from curation.download.resolver import DnsCache
from curation.download.service import DownloadService, Outcome, host_key
from curation.services import ServiceClient, ServiceError, ServiceSpec
from curation.stage import Resources, Stage

T = TypeVar("T")
NO_IMAGES = "no_images"
SERVICE_CLASS = "curation.download.service:DownloadService"
_DETAIL_CHARS = 300


class DownloadStage(Stage):
    name = "download"
    Config = DownloadConfig
    config: DownloadConfig
    replayable = False  # never fetched twice: a later pass starts from its staged output
    removes_images = True

    def __init__(self, config: DownloadConfig | None = None) -> None:
        super().__init__(config)
        self._dns: DnsCache = {}  # in-process mode: survives between batches
        self._client: ServiceClient | None = None

    @property
    def resources(self) -> Resources:
        return Resources(num_cpus=self.config.task_num_cpus)

    def services(self) -> list[ServiceSpec]:
        """One pool of download actors per distinct config."""
        cfg = self.config
        blob = json.dumps(cfg.model_dump(), sort_keys=True).encode()
        return [ServiceSpec(name=f"download-{hashlib.sha1(blob).hexdigest()[:10]}",
                            cls=SERVICE_CLASS, kwargs={"config": cfg.model_dump()},
                            num_actors=cfg.actors, num_cpus=cfg.actor_num_cpus)]

    def bind_services(self, clients: Mapping[str, ServiceClient]) -> None:
        self._client = clients[self.services()[0].name]

    def process_kept(self, docs: list[Document]) -> None:
        pending = [im for d in docs for im in d.images if im.status == IMAGE_PENDING]
        urls = sorted({im.url for im in pending})
        if urls:
            results = dict(zip(urls, self._fetch(urls)))
            for im in pending:
                apply_result(im, results[im.url], self.name)
        for doc in docs:
            if doc.images and not doc.kept_images and not self.config.keep_text_only:
                doc.drop(NO_IMAGES, self.name)

    def _fetch(self, urls: list[str]) -> list[Outcome]:
        if self._client is not None:
            try:
                return self._client.map("fetch", [(host_key(u), u) for u in urls])
            except Exception as exc:  # DownloadService.fetch itself never raises
                raise ServiceError(f"download service failed: {exc}") from exc
        return run_coroutine(self._fetch_in_process(urls))

    async def _fetch_in_process(self, urls: list[str]) -> list[Outcome]:
        service = DownloadService(self.config, dns_cache=self._dns)
        await service.start()
        try:
            return await service.fetch(urls)
        finally:
            await service.close()


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

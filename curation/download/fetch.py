"""One URL -> bytes or a reason code: async HTTP with bounds, retries and redirects.

Redirects are followed by hand so every hop passes the address policy again before
any connection is made. Each hop is retried on connection errors, timeouts, 408, 429
and 5xx with exponential backoff and jitter; a ``Retry-After`` is honoured (and
pauses the whole host) unless it asks for more than ``max_retry_after_s``. Bodies are
streamed and abandoned as soon as they pass ``max_bytes``, are opted out by
``X-Robots-Tag``, or do not start like an image while claiming not to be one.

A request holds one of ``max_in_flight`` window slots from its first byte sent until
its body has been handed to ``process`` (decode and resize, off the event loop) and
processed; a request still waiting for its host's turn holds none, so a slow or
paused host cannot take the window from the others.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from curation.download import reasons
from curation.download.config import DownloadConfig
from curation.download.limits import HostLimiter
from curation.download.policy import AddressPolicy, opted_out, parse_ip
from curation.download.resolver import PolicyResolver
from curation.download.sniff import looks_like_image

_REDIRECTS = {301, 302, 303, 307, 308}
_RETRY_STATUS = {408, 429}
_CHUNK = 64 * 1024


@dataclass
class FetchResult:
    """What came back for one image URL (after redirects and retries)."""

    reason: str  # reasons.OK or a reason code
    data: bytes | None = None
    content_type: str | None = None
    final_url: str | None = None
    attempts: int = 0
    detail: str | None = None  # human-readable cause, for logs and metadata
    processed: Any = None  # what ``process`` made of ``data`` (then data is None)


@dataclass
class _Hop:
    result: FetchResult | None = None
    redirect: URL | None = None
    retry_after: float | None = None


Process = Callable[[bytes], Awaitable[Any]]


class Fetcher:
    """Fetches URLs on one aiohttp session; one per event loop, for its whole life."""

    def __init__(self, cfg: DownloadConfig, session: aiohttp.ClientSession,
                 policy: AddressPolicy, resolver: PolicyResolver,
                 process: Process | None = None, rng: random.Random | None = None) -> None:
        self.cfg, self.session, self.policy, self.resolver = cfg, session, policy, resolver
        self.process = process
        self.limiter = HostLimiter(cfg.per_host_concurrency, cfg.per_host_rps)
        self.window = asyncio.Semaphore(cfg.max_in_flight)
        self.rng = rng or random.Random()
        self.timeout = aiohttp.ClientTimeout(total=cfg.timeout_s,
                                             connect=cfg.connect_timeout_s)

    async def fetch(self, url: str) -> FetchResult:
        """Never raises: every outcome is a FetchResult with a reason code."""
        try:
            return await self._follow(url)
        except Exception as exc:  # noqa: BLE001 - bad input never kills a run
            return FetchResult(reasons.FETCH_ERROR, detail=f"{url}: {exc!r}")

    async def _follow(self, url: str) -> FetchResult:
        """Follow redirects by hand; a failure's detail names the whole chain."""
        chain = [url]
        target, reason = self.policy.check_url(url)
        attempts = 0
        for _ in range(self.cfg.max_redirects + 1):
            if target is None:
                return FetchResult(reason or reasons.INVALID_URL, attempts=attempts,
                                   detail=" -> ".join(chain))
            hop, tries = await self._with_retries(target)
            attempts += tries
            if hop.redirect is None:
                assert hop.result is not None
                hop.result.attempts = attempts
                if hop.result.reason != reasons.OK and len(chain) > 1:
                    hop.result.detail = " -> ".join(chain[:-1] + [hop.result.detail or ""])
                return hop.result
            chain.append(str(hop.redirect))
            if chain[-1] in chain[:-1]:  # a loop never ends: stop at the first repeat
                break
            target, reason = self.policy.check_url(chain[-1])
        return FetchResult(reasons.TOO_MANY_REDIRECTS, attempts=attempts,
                           detail=" -> ".join(chain))

    async def _with_retries(self, url: URL) -> tuple[_Hop, int]:
        for attempt in range(self.cfg.max_retries + 1):
            hop = await self._attempt(url)
            result = hop.result
            if result is None or not reasons.is_retryable(result.reason):
                return hop, attempt + 1
            wait = self._backoff(attempt)
            if hop.retry_after is not None:
                if hop.retry_after > self.cfg.max_retry_after_s:
                    return hop, attempt + 1
                self.limiter.cool_down(_host(url), hop.retry_after)
                wait = max(wait, hop.retry_after)
            if attempt == self.cfg.max_retries:
                return hop, attempt + 1
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        """Exponential with equal jitter: half fixed, half random."""
        cap = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** attempt)
        return cap / 2 + self.rng.uniform(0, cap / 2)

    async def _attempt(self, url: URL) -> _Hop:
        host = _host(url)
        try:
            if parse_ip(host) is None:
                await self.resolver.addresses(host)  # policy verdict before connecting
            async with self.limiter.slot(host):
                await self.window.acquire()
                try:
                    async with self.session.get(url, allow_redirects=False,
                                                timeout=self.timeout) as resp:
                        hop = await self._read(resp, url)
                except BaseException:
                    self.window.release()
                    raise
        except Exception as exc:  # noqa: BLE001 - mapped to a reason code
            return _Hop(FetchResult(_reason_for(exc), detail=f"{url}: {exc!r}"))
        try:  # the host's slot is free again; the window slot is held until processed
            result = hop.result
            if self.process is not None and result is not None and result.data is not None:
                result.processed, result.data = await self.process(result.data), None
        finally:
            self.window.release()
        return hop

    async def _read(self, resp: aiohttp.ClientResponse, url: URL) -> _Hop:
        if resp.status in _REDIRECTS:
            return _redirect(resp, url)
        if resp.status >= 300 or resp.status < 200:
            retry_after = _retry_after(resp) if resp.status in (429, 503) else None
            return _Hop(FetchResult(reasons.http_reason(resp.status), detail=str(url)),
                        retry_after=retry_after)
        if opted_out(resp.headers, self.cfg.user_agent_token,
                     self.cfg.disallowed_header_directives):
            return _Hop(FetchResult(reasons.OPTED_OUT, detail=str(url)))
        if resp.content_length is not None and resp.content_length > self.cfg.max_bytes:
            return _Hop(FetchResult(reasons.TOO_LARGE, detail=f"{url}: Content-Length "
                                    f"{resp.content_length} > {self.cfg.max_bytes}"))
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        reason, data = await self._body(resp, _claims_image(ctype))
        return _Hop(FetchResult(reason, data=data, content_type=ctype or None,
                                final_url=str(url), detail=None if data else str(url)))

    async def _body(self, resp: aiohttp.ClientResponse,
                    claims_image: bool) -> tuple[str, bytes | None]:
        """Stream the (decoded) body; stop early when too large or clearly no image."""
        buf = bytearray()
        sniffed = claims_image
        async for chunk in resp.content.iter_chunked(_CHUNK):
            buf += chunk
            if len(buf) > self.cfg.max_bytes:
                resp.close()
                return reasons.TOO_LARGE, None
            if not sniffed and len(buf) >= 32:
                if not looks_like_image(bytes(buf[:32])):
                    resp.close()
                    return reasons.NOT_AN_IMAGE, None
                sniffed = True
        if not buf or (not sniffed and not looks_like_image(bytes(buf[:32]))):
            return reasons.NOT_AN_IMAGE, None
        return reasons.OK, bytes(buf)


def _host(url: URL) -> str:
    return (url.raw_host or "").lower().rstrip(".")


def _claims_image(ctype: str) -> bool:
    """Image types and the generic binary types servers misuse for images."""
    return (not ctype or ctype.startswith("image/")
            or ctype in ("application/octet-stream", "binary/octet-stream"))


def _redirect(resp: aiohttp.ClientResponse, url: URL) -> _Hop:
    location = resp.headers.get("Location")
    try:
        if not location:
            raise ValueError("no Location header")
        return _Hop(redirect=url.join(URL(location)))
    except (ValueError, TypeError) as exc:
        return _Hop(FetchResult(reasons.BAD_REDIRECT, detail=f"{url}: {exc}"))


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason_for(exc: BaseException) -> str:
    """Map an exception (or the OSError it wraps) to a reason code."""
    seen: BaseException | None = exc
    while seen is not None:
        reason = getattr(seen, "reason", None)
        if isinstance(reason, str) and reason in _RESOLVER_REASONS:
            return reason
        seen = seen.__cause__ or getattr(seen, "os_error", None)
    if isinstance(exc, TimeoutError):
        return reasons.TIMEOUT
    if isinstance(exc, aiohttp.InvalidURL):
        return reasons.INVALID_URL
    if isinstance(exc, aiohttp.ClientResponseError):
        return reasons.BAD_RESPONSE
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return reasons.CONNECTION_ERROR
    return reasons.FETCH_ERROR


_RESOLVER_REASONS = {reasons.BLOCKED_ADDRESS, reasons.DNS_ERROR, reasons.DNS_TEMPORARY}

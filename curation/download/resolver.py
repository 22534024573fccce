"""Cached DNS that refuses blocked addresses, plugged into aiohttp's connector.

Because the connector only ever connects to addresses this resolver returned, the
address check cannot be bypassed by a second lookup (DNS rebinding) or a redirect to
a name that points inside the network. Answers, and names that do not exist, are
cached for ``ttl_s`` in a plain dict owned by the download service (one per actor, for
the whole run; the actor owning a host is the only one that resolves it). A
temporary failure (EAI_AGAIN) is not cached. ``getaddrinfo`` replaces
``socket.getaddrinfo`` (a custom resolver, or a fake one in tests).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult

from curation.download import reasons
from curation.download.policy import AddressPolicy, parse_ip

Addrs = list[tuple[int, str]]
DnsCache = dict[str, tuple[float, "Addrs | str"]]  # host -> (expiry, addresses or reason)


class BlockedAddressError(OSError):
    """The host resolves (at least partly) to an address the policy refuses."""

    reason = reasons.BLOCKED_ADDRESS


class ResolveError(OSError):
    """The name did not resolve; ``reason`` tells a final from a temporary failure."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"cannot resolve {host!r}: {reason}")
        self.reason = reason


class PolicyResolver(AbstractResolver):
    """getaddrinfo in a thread, cached, concurrent lookups of one name shared."""

    def __init__(self, policy: AddressPolicy, cache: DnsCache, ttl_s: float,
                 getaddrinfo: Callable[..., list] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy, self.cache, self.ttl_s = policy, cache, ttl_s
        self.getaddrinfo, self.clock = getaddrinfo, clock
        self.lookups = 0  # calls that reached getaddrinfo (the cache missed)
        self._pending: dict[str, asyncio.Future[Addrs]] = {}

    async def addresses(self, host: str) -> Addrs:
        """(family, ip) pairs for ``host``, all allowed, or raise with a reason."""
        hit = self.cache.get(host)
        if hit and hit[0] > self.clock():
            if isinstance(hit[1], str):
                raise ResolveError(host, hit[1])
            addrs = hit[1]
        elif host in self._pending:
            addrs = await asyncio.shield(self._pending[host])
        else:
            addrs = await self._shared_lookup(host)
        for _, ip in addrs:
            parsed = parse_ip(ip)
            if parsed is None or not self.policy.address_allowed(host, parsed):
                raise BlockedAddressError(f"{host} resolves to blocked address {ip}")
        return addrs

    async def _shared_lookup(self, host: str) -> Addrs:
        fut = asyncio.get_running_loop().create_future()
        self._pending[host] = fut
        try:
            addrs = await self._lookup(host)
            fut.set_result(addrs)
        except BaseException as exc:
            if isinstance(exc, ResolveError) and exc.reason == reasons.DNS_ERROR:
                self.cache[host] = (self.clock() + self.ttl_s, exc.reason)
            fut.set_exception(exc)
            fut.exception()  # mark retrieved when nobody else waits
            raise
        finally:
            del self._pending[host]
        self.cache[host] = (self.clock() + self.ttl_s, addrs)
        return addrs

    async def _lookup(self, host: str) -> Addrs:
        self.lookups += 1
        lookup = self.getaddrinfo or socket.getaddrinfo  # looked up now: tests patch it
        call = functools.partial(lookup, host, None, type=socket.SOCK_STREAM)
        try:
            infos = await asyncio.get_running_loop().run_in_executor(None, call)
        except socket.gaierror as exc:
            temporary = exc.errno == socket.EAI_AGAIN
            raise ResolveError(host, reasons.DNS_TEMPORARY if temporary
                               else reasons.DNS_ERROR) from exc
        addrs = sorted({(fam, sa[0]) for fam, _, _, _, sa in infos
                        if fam in (socket.AF_INET, socket.AF_INET6)})
        if not addrs:
            raise ResolveError(host, reasons.DNS_ERROR)
        return addrs

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addrs = await self.addresses(host)
        return [{"hostname": host, "host": ip, "port": port, "family": fam, "proto": 0,
                 "flags": socket.AI_NUMERICHOST} for fam, ip in addrs
                if family in (socket.AF_UNSPEC, fam)]

    async def close(self) -> None:
        return None

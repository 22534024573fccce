"""Cached DNS that refuses blocked addresses, plugged into aiohttp's connector.

Because the connector only ever connects to addresses this resolver returned, the
address check cannot be bypassed by a second lookup (DNS rebinding) or a redirect to
a name that points inside the network. Results are cached for ``ttl_s`` in a plain
dict owned by the stage, so one worker resolves each host once per TTL.
"""

from __future__ import annotations

import asyncio
import socket
import time

from aiohttp.abc import AbstractResolver, ResolveResult

from curation.download import reasons
from curation.download.policy import AddressPolicy, parse_ip

DnsCache = dict[str, tuple[float, list[tuple[int, str]]]]


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

    def __init__(self, policy: AddressPolicy, cache: DnsCache, ttl_s: float) -> None:
        self.policy, self.cache, self.ttl_s = policy, cache, ttl_s
        self._pending: dict[str, asyncio.Future[list[tuple[int, str]]]] = {}

    async def addresses(self, host: str) -> list[tuple[int, str]]:
        """(family, ip) pairs for ``host``, all allowed, or raise with a reason."""
        hit = self.cache.get(host)
        if hit and hit[0] > time.monotonic():
            addrs = hit[1]
        elif host in self._pending:
            addrs = await asyncio.shield(self._pending[host])
        else:
            fut = asyncio.get_running_loop().create_future()
            self._pending[host] = fut
            try:
                addrs = await self._lookup(host)
                fut.set_result(addrs)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # mark retrieved when nobody else waits
                raise
            finally:
                del self._pending[host]
            self.cache[host] = (time.monotonic() + self.ttl_s, addrs)
        for _, ip in addrs:
            parsed = parse_ip(ip)
            if parsed is None or not self.policy.address_allowed(host, parsed):
                raise BlockedAddressError(f"{host} resolves to blocked address {ip}")
        return addrs

    async def _lookup(self, host: str) -> list[tuple[int, str]]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
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

"""Per-host politeness inside one worker: a concurrency cap and a request rate.

The rate is a GCRA token bucket (burst = per-host concurrency): each request reserves
the next slot before it awaits, so concurrent coroutines never race for one slot. A
429/503 ``Retry-After`` pushes the host's next slot out, pausing every request to
that host, not just the one that was told to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class HostLimiter:
    def __init__(self, concurrency: int, rps: float) -> None:
        self.concurrency, self.rps = concurrency, rps
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._tat: dict[str, float] = {}  # theoretical arrival time per host
        self._resume: dict[str, float] = {}  # cooldown end per host (Retry-After)

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's connections for one request (after its rate wait)."""
        sem = self._sems.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with sem:
            await self._wait_rate(host)
            yield

    async def _wait_rate(self, host: str) -> None:
        now = asyncio.get_running_loop().time()
        delay = self._resume.get(host, now) - now
        if self.rps > 0:
            tat = max(self._tat.get(host, now), now)
            self._tat[host] = tat + 1.0 / self.rps
            delay = max(delay, tat - now - (self.concurrency - 1) / self.rps)
        if delay > 0:
            await asyncio.sleep(delay)

    def cool_down(self, host: str, seconds: float) -> None:
        """No new request to ``host`` for ``seconds`` (the server asked for a pause)."""
        now = asyncio.get_running_loop().time()
        self._resume[host] = max(self._resume.get(host, now), now + seconds)

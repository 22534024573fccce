"""Per-host politeness: a concurrency cap, a request rate, and server-asked pauses.

One download actor owns each host for the whole run (see ``service``), so these
limits hold across units, workers and nodes. Requests to one host start at least
``PACING / rps`` seconds apart: each request reserves its start time before it
awaits, so concurrent coroutines never race for one turn, and the 5% margin keeps a
server that counts starts per second (with some network jitter) at or under ``rps``.
A 429/503 ``Retry-After`` pauses the whole host: requests already waiting for their
turn take a new one after the pause, not all at once when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

PACING = 1.05  # seconds between starts = PACING / rps


class HostLimiter:
    def __init__(self, concurrency: int, rps: float) -> None:
        self.concurrency, self.rps = concurrency, rps
        self.interval = PACING / rps if rps > 0 else 0.0
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._next: dict[str, float] = {}  # earliest start of the host's next request
        self._resume: dict[str, float] = {}  # end of the host's pause (Retry-After)

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's connections for one request (after its turn)."""
        sem = self._sems.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with sem:
            await self._wait_turn(host)
            yield

    async def _wait_turn(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            start = max(now, self._resume.get(host, now), self._next.get(host, now))
            if self.interval:
                self._next[host] = start + self.interval
            if start <= now:
                return
            await asyncio.sleep(start - now)
            if self._resume.get(host, 0.0) <= loop.time():
                return  # no pause began while this request waited

    def cool_down(self, host: str, seconds: float) -> None:
        """No new request to ``host`` for ``seconds`` (the server asked for a pause)."""
        now = asyncio.get_running_loop().time()
        self._resume[host] = max(self._resume.get(host, now), now + seconds)

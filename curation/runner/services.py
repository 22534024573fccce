"""Service actors on Ray: start the pools stages declare, route calls by key, stop.

For each ``ServiceSpec`` (``curation.services``) the runner starts ``num_actors`` async
actors (default: one per CPU of the cluster) once per pipeline segment, before the
segment's dataset runs; each wraps one instance of the plain-Python service class,
so its state (per-host limits, DNS cache, connections) lives as long as the segment.
``RayServiceClient`` is what stages get: a small picklable object holding the actor
handles that sends each item to ``route(key, n)``, i.e. always the same actor for
one key, from any task on any node.

Actors restart when their node dies (``max_restarts=-1``) and calls in progress are
re-sent to the new instance (``max_task_retries=-1``): a lost node costs the work it
was doing, not the run. They reserve ``num_cpus`` each (0 by default: their work is
I/O and decoding in threads, and a restart must never wait for CPUs held by the very
tasks that wait on it) and are spread over the nodes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ray  # noqa: TID251 - the runner is where Ray lives

from curation.services import ServiceSpec, declared_services, load_object, route

log = logging.getLogger(__name__)
_STOP_TIMEOUT_S = 30.0


@ray.remote
class ServiceActor:
    """One service instance on its own event loop; ``call`` runs one of its methods."""

    def __init__(self, cls: str, kwargs: dict[str, Any]) -> None:
        self._impl = load_object(cls)(**kwargs)
        self._start_lock: asyncio.Lock | None = None
        self._started = False

    async def ready(self) -> bool:
        await self._ensure_started()
        return True

    async def _ensure_started(self) -> None:
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if not self._started:
                await self._impl.start()
                self._started = True

    async def call(self, method: str, items: list[Any]) -> list[Any]:
        await self._ensure_started()
        return await getattr(self._impl, method)(items)

    async def close(self) -> None:
        if self._started:
            await self._impl.close()


@dataclass
class RayServiceClient:
    """Picklable into Ray tasks; ``map`` sends each item to the actor owning its key."""

    name: str
    actors: list[Any]  # ray.actor.ActorHandle

    def map(self, method: str, keyed: Sequence[tuple[str, Any]]) -> list[Any]:
        n = len(self.actors)
        groups: dict[int, list[int]] = defaultdict(list)
        for pos, (key, _) in enumerate(keyed):
            groups[route(key, n)].append(pos)
        refs = {a: self.actors[a].call.remote(method, [keyed[p][1] for p in positions])
                for a, positions in groups.items()}
        out: list[Any] = [None] * len(keyed)
        for a, ref in refs.items():
            for pos, result in zip(groups[a], ray.get(ref)):
                out[pos] = result
        return out


@dataclass
class ServicePool:
    """The actors of one segment; ``clients`` is what ``StageChain`` binds."""

    clients: dict[str, RayServiceClient] = field(default_factory=dict)

    def stop(self) -> None:
        """Close every service (sessions, threads), then end its actors."""
        handles = [h for c in self.clients.values() for h in c.actors]
        try:
            ray.get([h.close.remote() for h in handles], timeout=_STOP_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the actors are killed below anyway
            log.warning("service close failed: %s", exc)
        for h in handles:
            ray.kill(h, no_restart=True)
        self.clients.clear()


def start_services(stages: Sequence[Any], wait: bool = False) -> ServicePool:
    """Start every service the stages declare. Without ``wait`` the actors come up
    while the segment's first units load (calls queue until an actor is ready; a
    service that cannot start fails the first call that needs it)."""
    pool = ServicePool()
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    for spec in declared_services(stages):
        pool.clients[spec.name] = RayServiceClient(spec.name, _actors(spec, cpus))
    if wait:
        try:
            ray.get([h.ready.remote() for c in pool.clients.values() for h in c.actors])
        except BaseException:
            pool.stop()
            raise
    return pool


def _actors(spec: ServiceSpec, cluster_cpus: int) -> list[Any]:
    n = spec.num_actors or cluster_cpus
    options = dict(num_cpus=spec.num_cpus, max_concurrency=spec.max_concurrency,
                   max_restarts=-1, max_task_retries=-1, scheduling_strategy="SPREAD")
    return [ServiceActor.options(**options).remote(spec.cls, spec.kwargs)
            for _ in range(n)]

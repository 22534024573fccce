"""Long-lived services a stage can declare: state that must outlive one batch and be
shared by every worker (the downloader's per-host limits, Retry-After pauses, DNS
cache and connection pool).

A stage declares them with ``services() -> list[ServiceSpec]``; the runner starts each
as a pool of actors once per pipeline segment and hands the stage a client through
``bind_services({name: client})``. The client routes each item by a stable hash of its
key (the downloader uses the host name), so one actor owns a key for the whole run.
A stage whose services are not bound (unit tests, a plain loop) runs the same service
class in-process.

A service class is plain Python (no Ray), built as ``cls(**spec.kwargs)``, with::

    async def start(self) -> None        # once, on the actor's event loop
    async def close(self) -> None        # at the end of the segment
    async def METHOD(self, items: list) -> list   # one result per item, in order

This module never imports Ray; ``curation.runner.services`` runs the actors.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import xxhash


@dataclass(frozen=True)
class ServiceSpec:
    """One pool of service actors: which class, how built, how many, how big."""

    name: str  # key in the clients mapping given to ``bind_services``
    cls: str  # import path "package.module:Class" of the plain-Python service
    kwargs: dict[str, Any] = field(default_factory=dict)  # picklable constructor args
    num_actors: int | None = None  # None: one per CPU of the cluster
    num_cpus: float = 0.0  # per actor, as reserved in the scheduler
    max_concurrency: int = 1000  # calls one actor serves at once (async)


class ServiceError(RuntimeError):
    """A service call failed (actor lost for good, service could not start): an
    infrastructure fault, never a verdict on the items sent."""


class ServiceClient(Protocol):
    """What a stage calls: ``items[i]`` goes to the actor owning ``keys[i]``."""

    def map(self, method: str, keyed: Sequence[tuple[str, Any]]) -> list[Any]: ...


def route(key: str, n: int) -> int:
    """Index of the actor that owns ``key`` among ``n``: the same in every process and
    every run (Python's ``hash`` of a str is salted per process, so it cannot be used)."""
    return xxhash.xxh64_intdigest(key.encode("utf-8", "surrogatepass")) % n


def load_object(path: str) -> Any:
    """``"package.module:attr"`` -> the attribute."""
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"{path!r}: expected 'package.module:attribute'")
    return getattr(importlib.import_module(module), attr)


def bind_services(stages: Sequence[Any], clients: Mapping[str, ServiceClient] | None) -> None:
    """Give every stage that declares services the clients it asked for."""
    if not clients:
        return
    for stage in stages:
        specs = getattr(stage, "services", None)
        if specs is None:
            continue
        wanted = {s.name: clients[s.name] for s in specs() if s.name in clients}
        if wanted:
            stage.bind_services(wanted)


def declared_services(stages: Sequence[Any]) -> list[ServiceSpec]:
    """Every distinct ServiceSpec the stages declare (same name declared twice: once)."""
    seen: dict[str, ServiceSpec] = {}
    for stage in stages:
        specs = getattr(stage, "services", None)
        for spec in specs() if specs is not None else ():
            seen.setdefault(spec.name, spec)
    return list(seen.values())

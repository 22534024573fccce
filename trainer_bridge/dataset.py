"""A torch IterableDataset over curated shards: equal counts per rank, seeded shuffle,
exact mid-epoch resume.

Each (rank, worker) reads its own segments (see ``partition``), shuffles raw samples
in blocks of ``shuffle_buffer`` (seeded by seed, epoch, rank, worker and block
number), optionally groups ``group_size`` consecutive samples into one item (VILA
packs 4 COYO pairs per index), then applies ``transform`` (decode, tokenize). Because
the order is a pure function of the seed and the epoch, resuming only needs how many
items each worker has delivered: the worker jumps to the block holding the next item,
without reading earlier shards, and continues with exactly the next unseen item.

Counting: with ``num_workers=0`` the dataset counts what it yields; with workers, use
``ResumableLoader`` (it counts delivered batches by their ``__worker__`` tags, so
prefetched but undelivered items are produced again after a restart).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from trainer_bridge.partition import (
    Remainder,
    per_rank,
    shard_order,
    skip,
    worker_range,
    worker_segments,
)
from trainer_bridge.shardlist import Shard, resolve_shards
from trainer_bridge.tar_reader import read_samples

log = logging.getLogger("trainer_bridge")
MAX_LOGGED_FAILURES = 10


def rank_and_world() -> tuple[int, int]:
    """From an initialized torch.distributed, else RANK/WORLD_SIZE, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ShardDataset(IterableDataset):
    """Stream samples of WebDataset shards for one rank (see module docstring)."""

    def __init__(self, urls: str | Iterable[str], *, transform: Callable | None = None,
                 seed: int = 0, shuffle: bool = True, shuffle_buffer: int = 500,
                 remainder: Remainder = "pad", group_size: int = 1,
                 rank: int | None = None, world_size: int | None = None,
                 counts: dict[str, int] | None = None,
                 storage_options: dict | None = None,
                 shards: list[Shard] | None = None) -> None:
        super().__init__()
        auto_rank, auto_world = rank_and_world()
        self.rank = auto_rank if rank is None else rank
        self.world_size = auto_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world size {self.world_size}")
        self.shards = shards if shards is not None else resolve_shards(
            urls, counts, storage_options)
        self.transform, self.seed, self.shuffle = transform, seed, shuffle
        self.shuffle_buffer, self.remainder = max(1, shuffle_buffer), remainder
        self.group_size, self.storage_options = max(1, group_size), storage_options
        self.epoch = 0
        self.failures = 0
        self._consumed: dict[int, int] = {}
        self._streams: int | None = None  # worker streams the consumed counts refer to
        per_rank(self.total, self.world_size, remainder)  # validates ``remainder``

    @property
    def total(self) -> int:
        return sum(s.count for s in self.shards)

    def samples_per_rank(self) -> int:
        return per_rank(self.total, self.world_size, self.remainder)

    def items_per_worker(self, worker: int, num_workers: int) -> int:
        lo, hi = worker_range(self.samples_per_rank(), worker, num_workers)
        return (hi - lo) // self.group_size

    def __len__(self) -> int:
        """Items this rank yields per epoch with one worker (use ``len_for`` with more)."""
        return self.len_for(1)

    def len_for(self, num_workers: int) -> int:
        n = max(1, num_workers)
        return sum(self.items_per_worker(w, n) for w in range(n))

    # -- epoch and resume state ---------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` (same epoch again: keep the resume position)."""
        if epoch != self.epoch:
            self.epoch, self._consumed = epoch, {}

    def end_epoch(self) -> None:
        self.epoch, self._consumed = self.epoch + 1, {}

    def state_dict(self, num_workers: int | None = None) -> dict[str, Any]:
        streams = max(1, num_workers) if num_workers is not None else (self._streams or 1)
        return {"epoch": self.epoch, "seed": self.seed, "rank": self.rank,
                "world_size": self.world_size, "total": self.total,
                "remainder": self.remainder, "group_size": self.group_size,
                "streams": streams, "consumed": {str(k): v for k, v in self._consumed.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        wrong = [k for k in ("seed", "rank", "world_size", "total", "remainder", "group_size")
                 if state.get(k) != mine[k]]
        if wrong:
            raise ValueError("cannot resume: " + ", ".join(
                f"{k} was {state.get(k)!r}, now {mine[k]!r}" for k in wrong))
        self.epoch = int(state["epoch"])
        self._streams = int(state["streams"])
        self._consumed = {int(k): int(v) for k, v in state["consumed"].items()}

    def note_batch(self, batch: dict[str, Any]) -> None:
        """Count a delivered batch (called by ResumableLoader when workers are used)."""
        for w in _as_list(batch["__worker__"]):
            self._consumed[int(w)] = self._consumed.get(int(w), 0) + 1

    # -- iteration ---------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        if self._consumed and self._streams not in (None, num_workers):
            raise ValueError(f"resume state was saved with {self._streams} worker stream(s), "
                             f"this loader has {num_workers}: use the same num_workers")
        self._streams = num_workers
        done = self._consumed.get(worker, 0)
        for item in self._items(worker, num_workers, done):
            if info is None:
                self._consumed[0] = self._consumed.get(0, 0) + 1
            yield item
        if info is None:
            self.end_epoch()

    def _items(self, worker: int, num_workers: int, done: int) -> Iterator[Any]:
        n_items = self.items_per_worker(worker, num_workers)
        if done >= n_items:
            return
        raw = self._raw(worker, num_workers, done * self.group_size,
                        n_items * self.group_size)
        if self.group_size > 1:
            raw = _grouped(raw, self.group_size)
        items = raw if self.transform is None else self._transformed(raw)
        for out in items:
            yield _tag(out, worker)

    def _raw(self, worker: int, num_workers: int, start: int, stop: int) -> Iterator[dict]:
        """Raw samples ``start..stop-1`` of this worker's shuffled stream."""
        order = shard_order(len(self.shards), self.seed, self.epoch, self.shuffle)
        counts = [s.count for s in self.shards]
        segs = worker_segments(counts, order, self.rank, self.world_size, worker,
                               num_workers, self.remainder)
        if not self.shuffle:
            yield from islice(self._read(skip(segs, start)), stop - start)
            return
        block = self.shuffle_buffer
        first = start // block
        stream = self._read(skip(segs, first * block))
        pos = first * block
        for b in range(first, -(-stop // block)):
            buf = list(islice(stream, min(block, stop - pos)))
            random.Random(f"buf-{self.seed}-{self.epoch}-{self.rank}-{worker}-{b}").shuffle(buf)
            lead = start - pos if b == first else 0
            yield from buf[lead:]
            pos += len(buf)

    def _read(self, segs) -> Iterator[dict]:
        for seg in segs:
            yield from read_samples(self.shards[seg.shard].url, seg.start, seg.stop,
                                    self.storage_options)

    def _transformed(self, items: Iterator[Any]) -> Iterator[Any]:
        """Apply the transform; a sample that fails is replaced by a good neighbour
        (counted and logged with its shard and key) so every rank keeps its count."""
        last, pending = None, 0
        for item in items:
            try:
                out = self.transform(item) if self.transform is not None else item
            except Exception as exc:  # bad sample: substitute, never unbalance ranks
                self.failures += 1
                if self.failures <= MAX_LOGGED_FAILURES:
                    log.warning("sample %s: %s: %s", _where(item), type(exc).__name__, exc)
                if last is None:
                    pending += 1
                    continue
                out = last
            for _ in range(pending + 1):
                yield out
            last, pending = out, 0
        if pending:
            raise RuntimeError(f"all {pending} samples of a worker stream failed to "
                               f"transform (first shards: {self.shards[0].url})")


class ResumableLoader(DataLoader):
    """A DataLoader that keeps its ShardDataset's resume state up to date.

    Use ``persistent_workers=False`` (the default): workers copy the dataset, with its
    resume position, when an epoch's iterator starts."""

    def __iter__(self) -> Iterator[Any]:
        ds = self.dataset
        for batch in super().__iter__():
            if self.num_workers > 0:
                ds.note_batch(batch)
            yield batch
        if self.num_workers > 0:
            ds.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict(self.num_workers)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)


def _as_list(value: Any) -> list:
    return value.tolist() if isinstance(value, torch.Tensor) else list(value)


def _grouped(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while True:
        group = list(islice(items, size))
        if len(group) < size:
            return
        yield group


def _tag(out: Any, worker: int) -> Any:
    if isinstance(out, dict):  # our own fresh dict: tagging in place saves a copy
        out["__worker__"] = worker
        return out
    if isinstance(out, list):  # raw groups
        return {"samples": out, "__key__": [s["__key__"] for s in out], "__worker__": worker}
    raise TypeError(f"transform must return a dict, got {type(out).__name__}")


def _where(item: Any) -> str:
    first = item[0] if isinstance(item, list) else item
    return f"{first.get('__url__')}#{first.get('__key__')}"

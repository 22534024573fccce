"""A torch IterableDataset over curated shards: equal counts per rank, seeded shuffle,
exact mid-epoch resume with any number of DataLoader workers.

Each rank's epoch is split into ``num_workers`` *streams* (``partition``). A stream
shuffles raw samples in blocks of ``shuffle_buffer`` (seeded by seed, epoch, rank,
stream and block), optionally groups ``group_size`` consecutive samples into one item
(VILA packs 4 COYO pairs per index) and applies ``transform``. The order is a pure
function of the seed and the epoch, so resuming needs only how many items each stream
delivered: a stream jumps to its next unseen item, opening only shards that still hold
undelivered samples (inside a partly delivered shuffle block, exactly the samples not
yet delivered are read).

The DataLoader hands out batches round-robin over its workers (skipping a worker that
ran out) and restarts at worker 0 after a restart. ``ResumableLoader`` records which
stream comes next; after a resume, worker ``i`` serves stream ``(i + next) % n``, so
the global batch order equals the uninterrupted run. Batches carry ``__worker__`` (the
stream of each sample) for that bookkeeping.
"""

from __future__ import annotations

import logging
import os
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from trainer_bridge.partition import (
    Remainder,
    Segment,
    per_rank,
    segments_for,
    shard_order,
    skip,
    worker_range,
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
        self.opened: deque[str] = deque(maxlen=1024)  # last shards opened here (diagnosis)
        self._consumed: dict[int, int] = {}
        self._streams: int | None = None  # stream count the consumed counts refer to
        self._next_stream = 0
        self._loader_counts = False  # a ResumableLoader counts delivered batches
        per_rank(self.total, self.world_size, remainder)  # validates ``remainder``

    @property
    def total(self) -> int:
        return sum(s.count for s in self.shards)

    def samples_per_rank(self) -> int:
        return per_rank(self.total, self.world_size, self.remainder)

    def _item_range(self, worker: int, num_workers: int) -> tuple[int, int]:
        """The worker's items (groups of ``group_size``) within this rank: whole groups
        are formed over the rank's samples first (as VILA groups per rank), then split."""
        return worker_range(self.samples_per_rank() // self.group_size, worker, num_workers)

    def items_per_worker(self, worker: int, num_workers: int) -> int:
        lo, hi = self._item_range(worker, num_workers)
        return hi - lo

    def __len__(self) -> int:
        """Items this rank yields per epoch with one worker (use ``len_for`` with more)."""
        return self.len_for(1)

    def len_for(self, num_workers: int) -> int:
        n = max(1, num_workers)
        return sum(self.items_per_worker(w, n) for w in range(n))

    def batches_for(self, num_workers: int, batch_size: int | None,
                    drop_last: bool = False) -> int:
        """Batches per epoch: each worker batches its own stream (last one partial)."""
        n = max(1, num_workers)
        items = [self.items_per_worker(w, n) for w in range(n)]
        if not batch_size:
            return sum(items)
        if drop_last:
            return sum(i // batch_size for i in items)
        return sum(-(-i // batch_size) for i in items)

    # -- epoch and resume state ---------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` (same epoch again: keep the resume position)."""
        if epoch != self.epoch:
            self.epoch, self._consumed, self._next_stream = epoch, {}, 0

    def end_epoch(self) -> None:
        self.epoch, self._consumed, self._next_stream = self.epoch + 1, {}, 0

    def state_dict(self, num_workers: int | None = None) -> dict[str, Any]:
        streams = max(1, num_workers) if num_workers is not None else (self._streams or 1)
        return {"epoch": self.epoch, "seed": self.seed, "rank": self.rank,
                "world_size": self.world_size, "total": self.total,
                "remainder": self.remainder, "group_size": self.group_size,
                "shuffle": self.shuffle, "shuffle_buffer": self.shuffle_buffer,
                "streams": streams, "next_stream": self._next_stream,
                "consumed": {str(k): v for k, v in self._consumed.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        keys = ("seed", "rank", "world_size", "total", "remainder", "group_size",
                "shuffle", "shuffle_buffer")
        wrong = [k for k in keys if k in state and state[k] != mine[k]]
        if wrong:
            raise ValueError("cannot resume: " + ", ".join(
                f"{k} was {state.get(k)!r}, now {mine[k]!r}" for k in wrong))
        self.epoch = int(state["epoch"])
        self._streams = int(state["streams"])
        self._next_stream = int(state.get("next_stream", 0))
        self._consumed = {int(k): int(v) for k, v in state["consumed"].items()}

    def note_batch(self, batch: Any) -> None:
        """Count a delivered batch by its ``__worker__`` tags (ResumableLoader calls it)."""
        tags = batch.get("__worker__") if isinstance(batch, dict) else None
        if tags is None:
            raise TypeError(
                "ResumableLoader needs every batch to be a dict holding '__worker__' (one "
                "entry per sample: the stream it came from) to count what was delivered; "
                f"the collate_fn returned {type(batch).__name__}"
                + (f" with keys {sorted(batch)[:8]}" if isinstance(batch, dict) else "")
                + ". Keep it, e.g. out['__worker__'] = [s['__worker__'] for s in samples], "
                "or use trainer_bridge.Collator")
        streams = _as_list(tags)
        for w in streams:
            self._consumed[int(w)] = self._consumed.get(int(w), 0) + 1
        if streams:
            self._next_stream = (int(streams[-1]) + 1) % max(1, self._streams or 1)

    # -- iteration ---------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        if self._consumed and self._streams not in (None, num_workers):
            raise ValueError(f"resume state was saved with {self._streams} worker stream(s), "
                             f"this loader has {num_workers}: use the same num_workers")
        rotation = self._next_stream if self._streams == num_workers else 0
        self._streams = num_workers
        stream = (worker + rotation) % num_workers
        count_here = info is None and not self._loader_counts
        done = self._consumed.get(stream, 0)
        for item in self._items(stream, num_workers, done):
            if count_here:
                self._consumed[0] = self._consumed.get(0, 0) + 1
            yield item
        if count_here:
            self.end_epoch()

    def _items(self, stream: int, num_streams: int, done: int) -> Iterator[Any]:
        n_items = self.items_per_worker(stream, num_streams)
        if done >= n_items:
            return
        raw = self._raw(stream, num_streams, done * self.group_size,
                        n_items * self.group_size)
        if self.group_size > 1:
            raw = _grouped(raw, self.group_size)
        items = raw if self.transform is None else self._transformed(raw)
        for out in items:
            yield _tag(out, stream)

    def _segments(self, stream: int, num_streams: int) -> list[Segment]:
        order = shard_order(len(self.shards), self.seed, self.epoch, self.shuffle)
        lo, hi = self._item_range(stream, num_streams)
        base, g = self.rank * self.samples_per_rank(), self.group_size
        return segments_for([s.count for s in self.shards], order, base + lo * g,
                            base + hi * g)

    def _perm(self, stream: int, block: int, size: int) -> list[int]:
        perm = list(range(size))
        random.Random(f"buf-{self.seed}-{self.epoch}-{self.rank}-{stream}-{block}").shuffle(perm)
        return perm

    def _raw(self, stream: int, num_streams: int, start: int, stop: int) -> Iterator[dict]:
        """Raw samples ``start..stop-1`` of this stream's shuffled order."""
        segs = self._segments(stream, num_streams)
        if not self.shuffle:
            yield from islice(self._read(skip(segs, start)), stop - start)
            return
        size = self.shuffle_buffer
        first = start // size
        reader = None
        for b in range(first, -(-stop // size)):
            lo, hi = b * size, min((b + 1) * size, stop)
            perm = self._perm(stream, b, hi - lo)
            if b == first and start > lo:  # partly delivered: read only what is left
                left = perm[start - lo:]
                got = dict(self._read_positions(segs, lo, set(left)))
                yield from (got[i] for i in left)
                continue
            if reader is None:
                reader = self._read(skip(segs, lo))
            buf = list(islice(reader, hi - lo))
            yield from (buf[i] for i in perm)

    def _read_positions(self, segs: list[Segment], base: int,
                        wanted: set[int]) -> Iterator[tuple[int, dict]]:
        """``(position - base, sample)`` for the wanted positions of the stream; a
        shard segment without a wanted position is not opened."""
        offset = 0
        for seg in segs:
            lo, hi = offset - base, offset - base + seg.size
            offset += seg.size
            inside = [p for p in wanted if lo <= p < hi]
            if not inside:
                continue
            first, last = min(inside), max(inside)
            samples = self._read_one(seg.shard, seg.start + first - lo, seg.start + last - lo + 1)
            for pos, sample in zip(range(first, last + 1), samples):
                if pos in wanted:
                    yield pos, sample

    def _read(self, segs: list[Segment]) -> Iterator[dict]:
        for seg in segs:
            yield from self._read_one(seg.shard, seg.start, seg.stop)

    def _read_one(self, shard: int, start: int, stop: int) -> Iterator[dict]:
        url = self.shards[shard].url
        self.opened.append(url)
        return read_samples(url, start, stop, self.storage_options)

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
    """A DataLoader that keeps its ShardDataset's resume state up to date and knows
    its true length with workers (each worker's last batch may be partial).

    Workers copy the dataset, with its resume position, when an epoch's iterator
    starts: ``persistent_workers`` and ``in_order=False`` are refused."""

    def __init__(self, dataset: ShardDataset, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("persistent_workers"):
            raise ValueError("ResumableLoader needs persistent_workers=False: workers must "
                             "copy the dataset's resume position at each epoch start")
        if kwargs.get("in_order") is False:
            raise ValueError("ResumableLoader needs in_order=True: the resume state "
                             "relies on the DataLoader's round-robin order")
        super().__init__(dataset, *args, **kwargs)
        dataset._loader_counts = True

    def __iter__(self) -> Iterator[Any]:
        ds = self.dataset
        ds._streams = max(1, self.num_workers) if not ds._consumed else ds._streams
        for batch in super().__iter__():
            ds.note_batch(batch)
            yield batch
        ds.end_epoch()

    def __len__(self) -> int:
        return self.dataset.batches_for(self.num_workers, self.batch_size, self.drop_last)

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


def _tag(out: Any, stream: int) -> Any:
    if isinstance(out, dict):  # our own fresh dict: tagging in place saves a copy
        out["__worker__"] = stream
        return out
    if isinstance(out, list):  # raw groups
        return {"samples": out, "__key__": [s["__key__"] for s in out], "__worker__": stream}
    raise TypeError(f"transform must return a dict, got {type(out).__name__}")


def _where(item: Any) -> str:
    first = item[0] if isinstance(item, list) else item
    return f"{first.get('__url__')}#{first.get('__key__')}"

"""Split one epoch's samples across ranks and DataLoader workers, exactly.

The epoch is one global sequence: the shards in a seeded order, their samples
concatenated. Rank ``r`` takes positions ``[r*C, (r+1)*C)`` where ``C`` is the same
for every rank, so DDP never waits on a rank that ran out:

- ``remainder="pad"``: ``C = ceil(N / world)``; positions past the end wrap around to
  the start (a few samples are seen twice in that epoch).
- ``remainder="drop"``: ``C = N // world``; the last ``N mod world`` samples of the
  epoch's order are skipped (a different few each epoch, since the order changes).

Within a rank the ``C`` positions are split into contiguous ranges, one per worker;
the split depends only on ``C`` and the worker count, so every rank yields the same
number of batches. A range becomes shard segments ``(shard, start, stop)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Remainder = Literal["pad", "drop"]


@dataclass(frozen=True)
class Segment:
    """Samples ``start..stop-1`` of shard number ``shard`` (index into the shard list)."""

    shard: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def shard_order(num_shards: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The epoch's shard order: the same for every rank, restart and worker."""
    order = list(range(num_shards))
    if shuffle:
        random.Random(f"shards-{seed}-{epoch}").shuffle(order)
    return order


def per_rank(total: int, world_size: int, remainder: Remainder) -> int:
    if remainder not in ("pad", "drop"):
        raise ValueError(f"remainder must be 'pad' or 'drop', not {remainder!r}")
    if remainder == "pad":
        return -(-total // world_size) if total else 0
    return total // world_size


def worker_range(count: int, worker: int, num_workers: int) -> tuple[int, int]:
    """Contiguous sub-range of ``range(count)`` for one worker (sizes differ by <= 1)."""
    base, extra = divmod(count, num_workers)
    start = worker * base + min(worker, extra)
    return start, start + base + (1 if worker < extra else 0)


def segments_for(counts: list[int], order: list[int], start: int,
                 stop: int) -> list[Segment]:
    """Global positions ``[start, stop)`` of the ordered, wrapping sequence as segments."""
    total = sum(counts[i] for i in order)
    if stop <= start or total == 0:
        return []
    bounds = []
    offset = 0
    for shard in order:
        bounds.append((offset, shard))
        offset += counts[shard]
    out: list[Segment] = []
    pos = start
    while pos < stop:
        local = pos % total
        for begin, shard in bounds:
            if begin <= local < begin + counts[shard]:
                take = min(stop - pos, begin + counts[shard] - local)
                out.append(Segment(shard, local - begin, local - begin + take))
                pos += take
                break
    return out


def worker_segments(counts: list[int], order: list[int], rank: int, world_size: int,
                    worker: int, num_workers: int, remainder: Remainder) -> list[Segment]:
    """The segments one worker of one rank reads in an epoch."""
    per = per_rank(sum(counts), world_size, remainder)
    lo, hi = worker_range(per, worker, num_workers)
    return segments_for(counts, order, rank * per + lo, rank * per + hi)


def skip(segments: list[Segment], n: int) -> list[Segment]:
    """Drop the first ``n`` samples of a segment list (resume without reading them)."""
    out = []
    for seg in segments:
        if n >= seg.size:
            n -= seg.size
            continue
        out.append(Segment(seg.shard, seg.start + n, seg.stop))
        n = 0
    return out

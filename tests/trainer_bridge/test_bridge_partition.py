"""Partition arithmetic: equal per-rank counts, disjoint worker ranges, wrap/drop."""

from __future__ import annotations

from collections import Counter

import pytest

from trainer_bridge.partition import (
    Segment,
    per_rank,
    shard_order,
    skip,
    worker_range,
    worker_segments,
)

COUNTS = [4, 3, 3, 4, 4, 4, 4, 1]  # 27 samples, uneven shards


def positions(segs: list[Segment]) -> list[tuple[int, int]]:
    return [(s.shard, i) for s in segs for i in range(s.start, s.stop)]


# 27 samples padded to equal ranks: ceil(27 / world), written out (not computed by
# the code under test)
@pytest.mark.parametrize("world,workers,per", [(2, 2, 14), (3, 2, 9), (4, 3, 7), (5, 1, 6)])
def test_pad_covers_everything_with_equal_counts(world, workers, per):
    order = shard_order(len(COUNTS), seed=3, epoch=1, shuffle=True)
    assert per_rank(27, world, "pad") == per
    seen: Counter = Counter()
    for rank in range(world):
        rank_items = [p for w in range(workers) for p in positions(
            worker_segments(COUNTS, order, rank, world, w, workers, "pad"))]
        assert len(rank_items) == per
        seen.update(rank_items)
    assert len(seen) == 27  # the union is the whole set
    assert sum(seen.values()) - 27 == per * world - 27  # only the wrap repeats
    assert max(seen.values()) <= 2


@pytest.mark.parametrize("world,workers,per", [(2, 2, 13), (4, 3, 6), (7, 2, 3)])
def test_drop_is_disjoint_and_equal(world, workers, per):
    order = shard_order(len(COUNTS), seed=0, epoch=0, shuffle=True)
    assert per_rank(27, world, "drop") == per
    all_items = []
    for rank in range(world):
        rank_items = [p for w in range(workers) for p in positions(
            worker_segments(COUNTS, order, rank, world, w, workers, "drop"))]
        assert len(rank_items) == per
        all_items += rank_items
    assert len(all_items) == len(set(all_items)) == per * world


def test_world_larger_than_shards_still_balances():
    per = [len(positions(worker_segments([2, 1], [0, 1], r, 5, 0, 1, "pad")))
           for r in range(5)]
    assert per == [1, 1, 1, 1, 1]


def test_worker_ranges_and_skip():
    assert [worker_range(7, w, 3) for w in range(3)] == [(0, 3), (3, 5), (5, 7)]
    segs = [Segment(0, 1, 4), Segment(2, 0, 2)]
    assert skip(segs, 2) == [Segment(0, 3, 4), Segment(2, 0, 2)]
    assert skip(segs, 3) == [Segment(2, 0, 2)]


def test_shard_order_is_seeded():
    a = shard_order(50, 1, 0, True)
    assert a == shard_order(50, 1, 0, True)
    assert a != shard_order(50, 1, 1, True) and a != list(range(50))
    with pytest.raises(ValueError, match="remainder"):
        per_rank(10, 2, "wrap")

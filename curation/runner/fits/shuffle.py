"""Two building blocks of the distributed fits: a keyed shuffle and a lookup by rid.

``by_key`` brings every row with the same int64 key into one call of a function (one
call per hash partition, so the function works on arrays, never row by row).
``RidIndex`` finds rows of a materialized dataset by ``rid`` without shuffling them:
each block is sorted by rid and its range is known (one small row per block), so a
request is sent to the block that holds its rid, and only the requests move.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.dedup.lsh import mix64
from curation.stage import FACT_ID

PART = "_part"
ROWS_PER_PARTITION = 2_000_000  # rows of one shuffled group (tens of MB of numpy)


@contextmanager
def task_shuffles() -> Iterator[None]:
    """Shuffle with plain tasks (sort-based pull shuffle) while fitting. Ray 2.60's
    default hash shuffle starts a pool of aggregator actors per groupby: ~10 s per
    shuffle on a 2-CPU node (60 s for a 300-record dedup), and one such actor was
    seen to abort. The fits run a dozen small shuffles; tasks cost ~0.3 s each.
    Datasets keep the context they were made in: make them inside."""
    from ray.data.context import DataContext, ShuffleStrategy

    ctx = DataContext.get_current()
    before = ctx.shuffle_strategy
    ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        ctx.shuffle_strategy = before


def partitions_for(rows: int) -> int:
    """Hash partitions of a shuffle: at least one per CPU, bounded rows per group."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus, math.ceil(rows / ROWS_PER_PARTITION))


def partition_of(keys: np.ndarray, partitions: int) -> np.ndarray:
    """Hash partition of int64 keys (mixed first: rids and hashes spread evenly)."""
    mixed = mix64(np.asarray(keys, dtype=np.int64).view(np.uint64))
    return (mixed % np.uint64(partitions)).astype(np.int64)


def _add_partition(batch: pa.Table, key: str, partitions: int) -> pa.Table:
    keys = batch.column(key).to_numpy(zero_copy_only=False)
    return batch.append_column(PART, pa.array(partition_of(keys, partitions)))


def _call_group(group: pa.Table, fn: Callable[..., pa.Table], kwargs: dict) -> pa.Table:
    return fn(group.drop_columns([PART]), **kwargs)


def by_key(ds: ray.data.Dataset, key: str, fn: Callable[..., pa.Table], partitions: int,
           **kwargs: Any) -> ray.data.Dataset:
    """``fn(table, **kwargs)`` on every hash partition of ``ds`` by int64 column ``key``:
    rows with equal keys meet in the same call."""
    keyed = ds.map_batches(_add_partition, batch_format="pyarrow",
                           fn_kwargs={"key": key, "partitions": partitions})
    return keyed.groupby(PART, num_partitions=partitions).map_groups(
        _call_group, batch_format="pyarrow", fn_kwargs={"fn": fn, "kwargs": kwargs})


def _sorted_by_rid(batch: pa.Table) -> pa.Table:
    return batch.sort_by(FACT_ID)


@ray.remote(num_cpus=0.25)
def _rid_range(table: pa.Table) -> tuple[int, int, int]:
    if table.num_rows == 0:
        return 0, 0, 0
    rid = table.column(FACT_ID)
    return table.num_rows, int(rid[0].as_py()), int(rid[-1].as_py())


@dataclass
class RidIndex:
    """Blocks sorted by rid with disjoint ranges; ``lo``/``hi`` per block."""

    refs: list[ray.ObjectRef]
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def build(cls, ds: ray.data.Dataset, columns: list[str]) -> RidIndex:
        table = ds.select_columns(columns).map_batches(
            _sorted_by_rid, batch_format="pyarrow", batch_size=None).materialize()
        index = cls._of(table)
        if index is None:  # interleaved inputs: a distributed sort makes ranges disjoint
            index = cls._of(ds.select_columns(columns).sort(FACT_ID).materialize())
        assert index is not None
        return index

    @classmethod
    def _of(cls, ds: ray.data.Dataset) -> RidIndex | None:
        refs = ds.to_arrow_refs()
        ranges = ray.get([_rid_range.remote(r) for r in refs])
        keep = [i for i, (n, _, _) in enumerate(ranges) if n]
        refs = [refs[i] for i in keep]
        lo = np.array([ranges[i][1] for i in keep], dtype=np.int64)
        hi = np.array([ranges[i][2] for i in keep], dtype=np.int64)
        order = np.argsort(lo, kind="stable")
        refs, lo, hi = [refs[i] for i in order], lo[order], hi[order]
        if len(lo) > 1 and (lo[1:] <= hi[:-1]).any():
            return None
        return cls(refs, lo, hi)

    def block_of(self, rids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.lo, rids, side="right") - 1

    def attach(self, ds: ray.data.Dataset, on: str, fn: Callable[..., pa.Table],
               **kwargs: Any) -> ray.data.Dataset:
        """``fn(requests, rows, **kwargs)`` per block: ``rows`` are the block's rows of
        the requests' ``on`` rids, aligned with ``requests`` (a KeyError if absent)."""
        with_block = ds.map_batches(_add_block, batch_format="pyarrow",
                                    fn_kwargs={"on": on, "lo": self.lo})
        return with_block.groupby(PART, num_partitions=max(1, min(
            len(self.refs), partitions_for(0) * 4))).map_groups(
            _lookup_group, batch_format="pyarrow",
            fn_kwargs={"on": on, "refs": self.refs, "fn": fn, "kwargs": kwargs})


def _add_block(batch: pa.Table, on: str, lo: np.ndarray) -> pa.Table:
    rids = batch.column(on).to_numpy(zero_copy_only=False)
    block = np.searchsorted(lo, rids, side="right") - 1
    return batch.append_column(PART, pa.array(block.astype(np.int64)))


def _lookup_group(group: pa.Table, on: str, refs: list, fn: Callable[..., pa.Table],
                  kwargs: dict) -> pa.Table:
    parts = []
    blocks = group.column(PART).to_numpy()
    for block in np.unique(blocks):
        requests = group.filter(pa.array(blocks == block)).drop_columns([PART])
        if block < 0:
            raise KeyError("rid lookup: a rid below every block of the facts")
        table = ray.get(refs[int(block)])
        rids = table.column(FACT_ID).to_numpy()
        wanted = requests.column(on).to_numpy(zero_copy_only=False)
        pos = np.searchsorted(rids, wanted)
        pos_ok = np.minimum(pos, len(rids) - 1)
        if not np.array_equal(rids[pos_ok], wanted):
            raise KeyError(f"rid lookup: {int((rids[pos_ok] != wanted).sum())} rids "
                           "missing from the facts")
        parts.append(fn(requests, table.take(pa.array(pos_ok)), **kwargs))
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def count_by(ds: ray.data.Dataset, column: str) -> dict:
    """Counts per value of a small-cardinality column (a bounded collection)."""
    out: dict = {}
    for batch in ds.groupby(column).count().iter_batches(batch_format="pyarrow"):
        for value, n in zip(batch.column(column).to_pylist(),
                            batch.column("count()").to_pylist()):
            out[value] = out.get(value, 0) + n
    return out


def is_null_mask(table: pa.Table, column: str) -> np.ndarray:
    return pc.is_null(table.column(column)).to_numpy(zero_copy_only=False)

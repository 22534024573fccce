"""Streaming passes over an output's metadata files (never a tar): unit stats, drop
tables, manifest parts and quarantine files. Each pass keeps sums, counters by reason,
one small record per unit or shard, and the last key seen; never a row per document.
The findings are error strings naming the file they came from."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.inspect.arrow_io import codes, count_by, dense, iter_batches, iter_files, parquet_file
from curation.inspect.checks import check_unit
from curation.inspect.distributions import COLUMNS as DIST_COLUMNS
from curation.inspect.distributions import Distributions
from curation.inspect.load import OutputView
from shards.layout import DROPPED, STATS, unit_of_key
from shards.totals import COUNTED, SUMMED


# -- unit stats ---------------------------------------------------------------------
@dataclass
class UnitScan:
    totals: dict[str, Any]
    written: dict[str, int]  # unit -> documents_written
    dropped: dict[str, int]  # unit -> sum(documents_dropped)
    shard_lists: dict[str, dict]  # v1: shard -> {samples, images, bytes, unit}
    errors: list[str] = field(default_factory=list)


def scan_units(view: OutputView) -> UnitScan:
    """Check each stats/UNIT.json and sum them, one batch of files at a time."""
    folder = view.loc.child(STATS)
    sums: dict[str, int] = {k: 0 for k in SUMMED}
    counters: dict[str, Counter] = {k: Counter() for k in COUNTED}
    scan = UnitScan({}, {}, {}, {})
    for name, data in iter_files(folder, view.stats_names):
        if data is None:
            with open(folder.path(name), "rb") as f:
                data = f.read()
        try:
            st = json.loads(data)
        except ValueError as exc:
            scan.errors.append(f"stats/{name}: not valid JSON: {exc}")
            continue
        unit = str(st.get("unit") or name.removesuffix(".json"))
        scan.errors.extend(check_unit(st, f"stats/{name}"))
        for k in SUMMED:
            sums[k] += int(st.get(k) or 0)
        for k in COUNTED:
            counters[k].update({str(r): int(n) for r, n in (st.get(k) or {}).items()})
        scan.written[unit] = int(st.get("documents_written") or 0)
        scan.dropped[unit] = sum(int(n) for n in (st.get("documents_dropped") or {}).values())
        for sh in st.get("shards") or []:  # v1 only
            scan.shard_lists[str(sh.get("name"))] = {
                "samples": int(sh.get("samples", 0)), "images": int(sh.get("images", 0)),
                "bytes": int(sh.get("bytes", 0)), "unit": unit}
    scan.totals = {**sums, **{k: dict(sorted(v.items())) for k, v in counters.items()},
                   "units": len(scan.written)}
    return scan


# -- drop tables --------------------------------------------------------------------
@dataclass
class DropScan:
    reasons: Counter  # "stage:reason" -> documents
    images_with_doc: dict[str, int] | None  # stage -> images that left with documents
    per_unit: Counter  # unit -> rows
    records: dict[str, int]  # unit -> rows of dropped/UNIT.parquet (v2)
    source: str


def _reason_counts(stage: pa.Array, reason: pa.Array) -> Counter:
    """Rows per ``"stage:reason"`` (a missing stage reads "None", as in the stats)."""
    si, stages = codes(stage)
    ri, reasons = codes(reason)
    n = np.bincount(si * len(reasons) + ri, minlength=len(stages) * len(reasons))
    return Counter({f"{stages[k // len(reasons)]}:{reasons[k % len(reasons)]}": int(c)
                    for k, c in enumerate(n) if c})


def scan_drops(view: OutputView, records: bool = True) -> DropScan:
    """Drop tables by reason, per stage (images that left with documents) and per
    unit; with ``records``, also the row count of each dropped/UNIT.parquet (footers)."""
    reasons: Counter = Counter()
    with_doc: Counter | None = Counter()
    per_unit: Counter = Counter()
    cols = ["stage", "reason", "unit", "images_with_doc"]
    for _, batch in iter_batches(view.loc, view.drops_names, cols):
        if batch is None:
            continue
        names = batch.schema.names
        reasons.update(_reason_counts(batch.column("stage"), batch.column("reason")))
        if "unit" in names:
            per_unit.update(count_by(batch.column("unit")))
        if "images_with_doc" not in names:
            with_doc = None
        elif with_doc is not None:
            with_doc.update({str(k): n for k, n in
                             count_by(batch.column("stage"),
                                      batch.column("images_with_doc")).items()})
    counts = {}
    if records and view.layout == "v2":
        folder = view.loc.child(DROPPED)
        for name, data in iter_files(folder, view.dropped_names):
            counts[name.removesuffix(".parquet")] = \
                parquet_file(folder, name, data).metadata.num_rows
    return DropScan(reasons, dict(with_doc) if with_doc is not None else None, per_unit,
                    counts, view.sources.get("drops", "drops"))


# -- manifest -----------------------------------------------------------------------
MANIFEST_COLUMNS = sorted({"key", "shard", "unit", "num_images", "bytes", "offset",
                           "length"} | set(DIST_COLUMNS))


@dataclass
class ShardAgg:
    samples: int = 0
    images: int = 0
    bytes: int = 0  # sum of the samples' payload bytes (`bytes` column)
    span: int = 0  # sum of `length` (tar bytes of the samples)


@dataclass
class ManifestScan:
    rows: int = 0
    images: int = 0
    bytes: int = 0
    shards: dict[str, ShardAgg] = field(default_factory=dict)
    per_unit: Counter = field(default_factory=Counter)
    dists: Distributions = field(default_factory=Distributions)
    errors: list[str] = field(default_factory=list)


class _KeyOrder:
    """Keys must increase across the manifest parts in shard order, which proves them
    unique while remembering only the last one."""

    def __init__(self) -> None:
        self.last: str | None = None
        self.error: str | None = None

    def feed(self, keys: pa.Array, where: str) -> None:
        if self.error or len(keys) == 0:
            return
        if keys.null_count:
            self.error = f"{where}: a sample has no key"
            return
        if self.last is not None and keys[0].as_py() <= self.last:
            self._fail(self.last, keys[0].as_py(), where)
            return
        if len(keys) > 1:
            bad = pc.indices_nonzero(pc.less_equal(keys.slice(1),
                                                   keys.slice(0, len(keys) - 1)))
            if len(bad):
                i = bad[0].as_py()
                self._fail(keys[i].as_py(), keys[i + 1].as_py(), where)
                return
        self.last = keys[-1].as_py()

    def _fail(self, prev: str, key: str, where: str) -> None:
        self.error = (f"{where}: sample key {key} appears more than once" if key == prev
                      else f"{where}: sample key {key} comes after {prev} (keys must "
                      "increase in shard order; uniqueness cannot be checked)")


def scan_manifest(view: OutputView) -> ManifestScan:
    scan = ManifestScan()
    order = _KeyOrder()
    ends: dict[str, int] = {}  # part -> end offset of its last sample so far
    for part, batch in iter_batches(view.loc, view.manifest_names, MANIFEST_COLUMNS):
        if batch is None:
            continue
        names = batch.schema.names
        scan.rows += batch.num_rows
        scan.images += _sum(batch, "num_images")
        scan.bytes += _sum(batch, "bytes")
        order.feed(batch.column("key"), part)
        if "unit" in names:
            scan.per_unit.update(count_by(batch.column("unit")))
        else:
            scan.per_unit.update(unit_of_key(k) for k in batch.column("key").to_pylist())
        if view.layout == "v2":
            _check_part(scan, part, batch, ends)
            _add_part(scan, part, batch)
        else:
            _add_shards(scan, batch)
        scan.dists.add(batch)
    if order.error:
        scan.errors.append(order.error)
    return scan


def part_shard(part: str) -> str:
    """``manifest/000012.parquet`` -> ``000012.tar``."""
    return part.rsplit("/", 1)[-1].removesuffix(".parquet") + ".tar"


def _check_part(scan: ManifestScan, part: str, batch: pa.RecordBatch,
                ends: dict[str, int]) -> None:
    """A v2 part holds one shard's samples, back to back from byte 0 of the tar."""
    want = part_shard(part)
    other = [s for s in codes(batch.column("shard"))[1] if s != want]
    if other:
        scan.errors.append(f"{part}: a row names shard {other[0]}, not {want}")
    if not {"offset", "length"} <= set(batch.schema.names):
        return
    offset, length = dense(batch.column("offset")), dense(batch.column("length"))
    ends_at = ends.get(part, 0) + np.cumsum(length)
    starts = np.concatenate([[ends.get(part, 0)], ends_at[:-1]])
    wrong = np.nonzero(offset != starts)[0]
    if len(wrong):
        i = int(wrong[0])
        scan.errors.append(f"{part}: sample {batch.column('key')[i].as_py()} at offset "
                           f"{int(offset[i])}, expected {int(starts[i])} (samples lie "
                           "back to back)")
    ends[part] = int(ends_at[-1])


def _sum(batch: pa.RecordBatch, column: str) -> int:
    if column not in batch.schema.names:
        return 0
    return int(pc.sum(batch.column(column)).as_py() or 0)


def _add_part(scan: ManifestScan, part: str, batch: pa.RecordBatch) -> None:
    agg = scan.shards.setdefault(part_shard(part), ShardAgg())
    agg.samples += batch.num_rows
    agg.images += _sum(batch, "num_images")
    agg.bytes += _sum(batch, "bytes")
    agg.span += _sum(batch, "length")


def _add_shards(scan: ManifestScan, batch: pa.RecordBatch) -> None:
    """v1: a manifest file holds many shards' rows."""
    shard = batch.column("shard")
    sums = {c: count_by(shard, batch.column(c)) for c in ("num_images", "bytes", "length")
            if c in batch.schema.names}
    for name, n in count_by(shard).items():
        agg = scan.shards.setdefault(str(name), ShardAgg())
        agg.samples += n
        agg.images += sums.get("num_images", {}).get(name, 0)
        agg.bytes += sums.get("bytes", {}).get(name, 0)
        agg.span += sums.get("length", {}).get(name, 0)


# -- quarantine ---------------------------------------------------------------------
def scan_quarantine(view: OutputView) -> Counter:
    """Quarantined records by reason, line by line."""
    folder, names = view.quarantine
    reasons: Counter = Counter()
    for name in names:
        with folder.open(name, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    reasons[str(json.loads(line).get("reason", "unknown"))] += 1
                except (ValueError, AttributeError):
                    reasons["unreadable_quarantine_line"] += 1
    return reasons

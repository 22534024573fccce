"""Write a complete output folder in-process, without Ray: the same files, in the same
layout, as a pipeline run (pieces, packing, totals). For tests, benchmarks and small
scripts that already hold their documents; a corpus goes through ``curate run``."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from typing import Any

import pyarrow as pa

from curation.document import Document
from curation.location import Location
from shards.layout import MANIFEST, QUARANTINE, SHARD_INDEX, STATS, TOTALS
from shards.pack import ShardLimits, assemble_shard, cut_shards, shard_row
from shards.totals import sum_unit_stats
from shards.writer import SHARD_INDEX_SCHEMA, write_unit


def write_output(units: dict[str, list[Document]], output: str | Location,
                 limits: ShardLimits | None = None, quarantine: list[dict] | None = None,
                 storage_options: dict | None = None,
                 extra: dict[str, Any] | None = None,
                 fill_across_units: bool = True) -> dict[str, Any]:
    """Write ``units`` (unit id ``FFFFF-CCCCC`` -> documents, in order) as an output
    folder; ``quarantine`` records are stored as input file 0's. Returns the totals.
    ``fill_across_units=False`` starts a new shard at every unit (uneven shards, as
    tests of readers want)."""
    out = output if isinstance(output, Location) else Location.of(output, storage_options)
    limits = limits or ShardLimits()
    with tempfile.TemporaryDirectory(prefix="curate-pieces-") as tmp:
        pieces = Location.of(tmp)
        for unit in sorted(units):
            write_unit(units[unit], unit, out, pieces)

        def lengths():
            for unit in sorted(units):
                table = pieces.read_parquet(f"{unit}.parquet", columns=["length"])
                yield unit, table["length"].to_numpy()

        if fill_across_units:
            plan = list(cut_shards(lengths(), limits))
        else:
            plan = []
            for unit, lens in lengths():
                plan += [(len(plan) + i, ranges)
                         for i, ranges in cut_shards([(unit, lens)], limits)]
        shards = [assemble_shard(index, ranges, pieces, out) for index, ranges in plan]
    bad = quarantine or []
    out.child(QUARANTINE).write_bytes(
        "00000.jsonl", "".join(json.dumps(b) + "\n" for b in bad).encode())
    out.write_parquet(SHARD_INDEX, pa.Table.from_pylist(shards, schema=SHARD_INDEX_SCHEMA))
    totals = sum_unit_stats([out.child(STATS).read_json(n)
                             for n in out.list(".json", STATS)])
    totals.update({
        "documents_ingested": sum(len(d) for d in units.values()),
        "quarantined": dict(sorted(Counter(b["reason"] for b in bad).items())),
        "inputs": [], "shards": len(shards),
        "manifest_rows": sum(s["samples"] for s in shards), **(extra or {})})
    out.write_json(TOTALS, totals)
    assert len(out.list(".parquet", MANIFEST)) == len(shards)
    return totals


__all__ = ["write_output", "ShardLimits", "shard_row"]

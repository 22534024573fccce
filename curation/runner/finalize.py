"""Merge per-unit parts into the run's manifest, drop table, quarantine and totals."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from curation.storage import atomic_write, list_files, read_json, write_json
from shards.layout import join
from shards.writer import DROPS_SCHEMA, MANIFEST_SCHEMA

_SUMMED = ("documents_in", "documents_written", "images_in", "images_written",
           "bytes_written")
_COUNTED = ("documents_dropped", "image_status", "images_dropped", "sources")


def _merge_parquet(parts: list[str], schema: pa.Schema, dest: str,
                   storage_options: dict | None) -> int:
    tables = []
    for part in parts:
        with fsspec.open(part, "rb", **(storage_options or {})) as f:
            tables.append(pq.read_table(f))
    table = pa.concat_tables(tables, promote_options="default") if tables \
        else schema.empty_table()
    atomic_write(dest, lambda f: pq.write_table(table, f), storage_options)
    return table.num_rows


def sum_unit_stats(units: list[dict]) -> dict[str, Any]:
    totals: dict[str, Any] = {k: 0 for k in _SUMMED}
    counters: dict[str, Counter] = {k: Counter() for k in _COUNTED}
    shards = 0
    for st in units:
        for k in _SUMMED:
            totals[k] += st.get(k, 0)
        for k in _COUNTED:
            counters[k].update(st.get(k, {}))
        shards += len(st.get("shards", []))
    totals.update({k: dict(sorted(v.items())) for k, v in counters.items()})
    totals["shards"] = shards
    totals["units"] = len(units)
    return totals


def finalize_output(output: str, storage_options: dict | None = None,
                    timings: dict[str, float] | None = None) -> dict[str, Any]:
    so = storage_options
    unit_stats = [read_json(p, so) for p in list_files(join(output, "stats"), ".json", so)]
    totals = sum_unit_stats(unit_stats)
    manifest_rows = _merge_parquet(list_files(join(output, "manifest"), ".parquet", so),
                                   MANIFEST_SCHEMA, join(output, "manifest.parquet"), so)
    _merge_parquet(list_files(join(output, "drops"), ".parquet", so), DROPS_SCHEMA,
                   join(output, "drops.parquet"), so)
    quarantined: Counter = Counter()
    lines: list[str] = []
    for part in list_files(join(output, "_work", "quarantine"), ".jsonl", so):
        with fsspec.open(part, "rt", encoding="utf-8", **(so or {})) as f:
            for line in f:
                if line.strip():
                    lines.append(line if line.endswith("\n") else line + "\n")
                    quarantined[json.loads(line)["reason"]] += 1
    atomic_write(join(output, "quarantine.jsonl"),
                 lambda f: f.write("".join(lines).encode("utf-8")), so)
    ingest = [read_json(p, so) for p in list_files(join(output, "_work", "ingest"),
                                                    ".done.json", so)]
    totals["documents_ingested"] = sum(i["documents"] for i in ingest)
    totals["quarantined"] = dict(sorted(quarantined.items()))
    totals["inputs"] = [i["path"] for i in sorted(ingest, key=lambda i: i["index"])]
    totals["manifest_rows"] = manifest_rows
    if timings:
        totals["stage_seconds"] = {k: round(v, 3) for k, v in sorted(timings.items())}
    write_json(join(output, "stats.json"), totals, so)
    return totals

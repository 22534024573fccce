"""Run totals, computed where the per-unit files lie (Ray tasks), never by walking
every unit from the driver: each task sums a batch of unit stats or reads a batch of
manifest parts; the driver adds up the partial sums (a few per task) and writes
``shards.parquet`` (one row per shard) and ``stats.json`` (the run's marker)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.location import Location
from shards.layout import MANIFEST, SHARD_INDEX, STATS, TOTALS
from shards.pack import shard_row
from shards.totals import sum_ingest_markers, sum_unit_stats
from shards.writer import SHARD_INDEX_SCHEMA

BATCH = 256


@ray.remote(num_cpus=0.5)
def _sum_stats(stats: Location, names: list[str]) -> dict:
    return sum_unit_stats([stats.read_json(n) for n in names])


@ray.remote(num_cpus=0.5)
def _sum_markers(ingest: Location, names: list[str]) -> dict:
    return sum_ingest_markers([ingest.read_json(n) for n in names])


@ray.remote(num_cpus=0.5)
def _shard_rows(manifest: Location, names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        table = manifest.read_parquet(name, columns=["num_images", "length"])
        rows.append(shard_row(name.replace(".parquet", ".tar"), table))
    return rows


def _batches(names: list[str]) -> list[list[str]]:
    return [names[i:i + BATCH] for i in range(0, len(names), BATCH)]


def finalize_output(output: Location, ingest: Location,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    stats = output.child(STATS)
    totals = sum_unit_stats(ray.get([_sum_stats.remote(stats, b)
                                     for b in _batches(stats.list(".json"))]))
    read = sum_ingest_markers(ray.get([_sum_markers.remote(ingest, b)
                                       for b in _batches(ingest.list(".done.json"))]))
    manifest = output.child(MANIFEST)
    shards = [row for part in ray.get([_shard_rows.remote(manifest, b)
                                       for b in _batches(manifest.list(".parquet"))])
              for row in part]
    output.write_parquet(SHARD_INDEX, pa.Table.from_pylist(shards,
                                                           schema=SHARD_INDEX_SCHEMA))
    totals.update({
        "documents_ingested": read["documents"],
        "quarantined": read["quarantined"],
        "inputs": [path for _, path in read["inputs"]],
        "shards": len(shards),
        "manifest_rows": sum(s["samples"] for s in shards),
        **(extra or {}),
    })
    output.write_json(TOTALS, totals)
    return totals

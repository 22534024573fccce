"""`curate dedup` as a Ray Data job: files in, kept records and duplicates out, and
nothing the size of the corpus on the driver.

1. one task per input file reads its records and computes their dedup facts (record
   id = input file << 40 | the record's ordinal in the file); bad records go to
   ``quarantine/NNNNN.jsonl`` from the same task;
2. ``fits.dedup.fit_dedup`` decides on Ray Data, as for the pipeline stage;
3. the removed records are grouped by input file with that file's task row, and one
   task per file re-reads its raw records and writes the kept ones unchanged
   (``documents/NNNNN.jsonl`` or ``.parquet``) with the file's
   ``duplicates/NNNNN.parquet``; only per-file counts come back.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.dedup.facts import FACT_SCHEMA, fact_columns
from curation.dedup.params import DedupConfig
from curation.dedup.stage import DedupStage
from curation.document import Document
from curation.ingest.files import detect_format, expand_inputs, iter_jsonl_streams, open_binary
from curation.ingest.mmc4 import iter_lines
from curation.ingest.reader import read_input
from curation.location import Location
from curation.pipeline_config import IngestConfig
from curation.progress import Heartbeat, Ticker
from curation.runner.fits.dedup import fit_dedup
from curation.runner.fits.shuffle import task_shuffles
from curation.runner.session import start_ray
from curation.stage import FACT_ID, FACT_UNIT, facts_schema

FACT_CHUNK = 8192  # records per facts batch (signatures vectorized over it)
OUTPUT_DIRS = ("documents", "duplicates", "quarantine")
DUPLICATES_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("location", pa.string()), ("duplicate_of", pa.string()),
    ("duplicate_of_location", pa.string()), ("method", pa.string()),
    ("similarity", pa.float64()),
])
_WRITE_SCHEMA = pa.schema([("unit", pa.string()), ("path", pa.string()),
                           ("index", pa.int64()), ("rid", pa.int64()), *DUPLICATES_SCHEMA])
COUNTS = ("documents_in", "kept", "removed", "quarantined")


def _unit(index: int) -> str:
    return f"{index:05d}"


def _facts_of_file(batch: dict, ingest: IngestConfig, cfg: DedupConfig, out: Location,
                   storage_options: dict | None) -> Iterator[pa.Table]:
    stage = DedupStage(cfg)
    for path, index in zip(batch["path"], batch["index"]):
        index, base = int(index), int(index) << 40
        unit, docs, rids, bad = _unit(int(index)), [], [], []
        for ordinal, rec in enumerate(read_input(str(path), ingest, storage_options)):
            if not isinstance(rec, Document):
                bad.append(rec.to_dict())
                continue
            docs.append(rec)
            rids.append(base + ordinal)
            if len(docs) >= FACT_CHUNK:
                yield _facts(stage, unit, rids, docs)
                docs, rids = [], []
        if docs:
            yield _facts(stage, unit, rids, docs)
        if bad:
            out.write_bytes(f"quarantine/{unit}.jsonl", b"".join(
                json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in bad))


def _facts(stage: DedupStage, unit: str, rids: list[int], docs: list[Document]) -> pa.Table:
    cols = fact_columns(docs, stage.config)
    schema = facts_schema(stage)
    return pa.table({FACT_ID: pa.array(rids, pa.int64()), FACT_UNIT: [unit] * len(rids),
                     **{f.name: pa.array(cols[f.name], f.type) for f in FACT_SCHEMA}},
                    schema=schema)


def facts_dataset(files: list[str], ingest: IngestConfig, cfg: DedupConfig, out: Location,
                  storage_options: dict | None = None) -> ray.data.Dataset:
    """Facts of every record of the input files, one read task per file."""
    paths = ray.data.from_items([{"path": f, "index": i} for i, f in enumerate(files)],
                                override_num_blocks=max(1, len(files)))
    return paths.map_batches(_facts_of_file, batch_size=1, batch_format="numpy",
                             fn_kwargs={"ingest": ingest, "cfg": cfg, "out": out,
                                        "storage_options": storage_options})


# ---- writing: one task per input file -------------------------------------------------

def _task_rows(batch: pa.Table) -> pa.Table:
    n = batch.num_rows
    index = batch.column("index").to_numpy()
    cols = {"unit": pa.array([_unit(int(i)) for i in index]), "path": batch.column("path"),
            "index": pa.array(index, pa.int64())}
    return pa.table({f.name: cols.get(f.name, pa.nulls(n, f.type)) for f in _WRITE_SCHEMA},
                    schema=_WRITE_SCHEMA)


def _removed_rows(batch: pa.Table) -> pa.Table:
    n = batch.num_rows
    return pa.table({f.name: batch.column(f.name) if f.name in batch.column_names
                     else pa.nulls(n, f.type) for f in _WRITE_SCHEMA}, schema=_WRITE_SCHEMA)


def _quarantined(out: Location, unit: str) -> list[dict]:
    if not out.exists(f"quarantine/{unit}.jsonl"):
        return []
    return [json.loads(line) for line in out.read_bytes(f"quarantine/{unit}.jsonl").splitlines()]


def _write_jsonl(path: str, skip: set[str], out: Location, name: str, ingest: IngestConfig,
                 storage_options: dict | None) -> int:
    kept = 0

    def write(f) -> None:
        nonlocal kept
        for stream_name, stream in iter_jsonl_streams(path, storage_options):
            for lineno, raw, too_long in iter_lines(stream, ingest.max_line_bytes):
                if too_long or not raw.strip() or f"{stream_name}:{lineno}" in skip:
                    continue
                f.write(raw if raw.endswith(b"\n") else raw + b"\n")
                kept += 1

    out.write(name, write)
    return kept


def _write_parquet(path: str, skip: set[str], out: Location, name: str,
                   storage_options: dict | None) -> int:
    with open_binary(path, storage_options) as f:
        table = pq.read_table(f)
    rows = np.array([f"{path}#row={i}" not in skip for i in range(table.num_rows)])
    table = table.filter(pa.array(rows, pa.bool_()))
    out.write_parquet(name, table)
    return table.num_rows


def _write_file(group: pa.Table, out: Location, ingest: IngestConfig,
                storage_options: dict | None) -> pa.Table:
    """Kept records of one input file, unchanged, and the file's duplicates table."""
    task = group.filter(pc.is_valid(group.column("path")))
    removed = group.filter(pc.is_null(group.column("path")))
    path, unit = task.column("path")[0].as_py(), task.column("unit")[0].as_py()
    bad = _quarantined(out, unit)
    skip = {r["location"] for r in removed.select(["location"]).to_pylist()}
    skip |= {f"{b['file']}:{b['line']}" if b.get("line") is not None else
             f"{b['file']}#row={b['row']}" for b in bad
             if b.get("line") is not None or b.get("row") is not None}
    whole_file_bad = any(b.get("line") is None and b.get("row") is None for b in bad)
    if whole_file_bad:
        kept = 0
    elif detect_format(path) == "jsonl":
        kept = _write_jsonl(path, skip, out, f"documents/{unit}.jsonl", ingest,
                            storage_options)
    else:
        kept = _write_parquet(path, skip, out, f"documents/{unit}.parquet", storage_options)
    if removed.num_rows:
        out.write_parquet(f"duplicates/{unit}.parquet",
                          removed.select(DUPLICATES_SCHEMA.names).sort_by("location"))
    return pa.table({"documents_in": [kept + removed.num_rows], "kept": [kept],
                     "removed": [removed.num_rows], "quarantined": [len(bad)]})


def write_outputs(files: list[str], rows: ray.data.Dataset | None, out: Location,
                  ingest: IngestConfig, storage_options: dict | None,
                  ticker: Ticker | None = None) -> dict:
    tasks = ray.data.from_items([{"path": f, "index": i} for i, f in enumerate(files)],
                                override_num_blocks=max(1, len(files)))
    work = tasks.map_batches(_task_rows, batch_format="pyarrow")
    if rows is not None:
        work = work.union(rows.map_batches(_removed_rows, batch_format="pyarrow"))
    per_file = work.groupby("unit").map_groups(
        _write_file, batch_format="pyarrow",
        fn_kwargs={"out": out, "ingest": ingest, "storage_options": storage_options})
    totals = dict.fromkeys(COUNTS, 0)
    for batch in per_file.iter_batches(batch_size=None, batch_format="pyarrow"):
        for k in COUNTS:  # one small row per file, summed as they come
            totals[k] += int(pc.sum(batch.column(k)).as_py() or 0)
        if ticker is not None:
            ticker.update(batch.num_rows, extra=f"{totals['kept']:,} kept, "
                          f"{totals['removed']:,} removed")
    if ticker is not None:
        ticker.close()
    return totals


def run_dedup(inputs: list[str], output: str, cfg: DedupConfig, ingest: IngestConfig,
              address: str | None = None, storage_options: dict | None = None,
              stream: IO[str] | None = None) -> dict:
    """The whole command: facts, the distributed fit, then one writer per file.
    Progress goes to ``stream`` (stderr): a heartbeat while facts and fit run, then
    files written out of the total."""
    stream = stream or sys.stderr
    start_ray(address)
    out = Location.of(output, storage_options)
    for name in (*OUTPUT_DIRS, "stats.json"):
        out.remove_tree(name)
    files = expand_inputs(inputs, storage_options)
    print(f"curate dedup: {len(files)} input file(s) -> {out.uri}", file=stream, flush=True)
    with task_shuffles():
        t0 = time.perf_counter()
        with Heartbeat("dedup: facts and fit", stream):
            facts = facts_dataset(files, ingest, cfg, out, storage_options)
            summary, rows = fit_dedup(DedupStage(cfg), facts, own_columns=True)
        found = ", ".join(f"{m} {n:,}" for m, n in sorted(summary["counts"].items()))
        print(f"dedup: facts and fit in {time.perf_counter() - t0:.1f}s: "
              f"{found or 'no duplicates'}", file=stream, flush=True)
        stats = write_outputs(files, rows, out, ingest, storage_options,
                              Ticker("dedup: writing", len(files), "files", stream))
    stats["removed_by_method"] = summary["counts"]
    stats["files"] = len(files)
    stats["config"] = cfg.model_dump()
    out.write_json("stats.json", stats)
    return stats

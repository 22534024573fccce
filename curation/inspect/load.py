"""Read what an output folder says about itself (local or ``s3://``) without opening a
tar: per-unit stats, run totals, manifest, drop table, quarantine and ``_pipeline.json``.

The merged files (``manifest.parquet``, ``drops.parquet``, ``quarantine.jsonl``,
``stats.json``) are written when a run finishes; when they are missing (a run still
going, or one that stopped) the per-unit parts are read instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.storage import filesystem
from shards.layout import join
from shards.writer import DROPS_SCHEMA, MANIFEST_SCHEMA


@dataclass
class OutputView:
    """Everything `curate stats` needs, read once."""

    root: str
    units: list[dict]  # stats/UNIT.json, sorted by unit id
    manifest: pa.Table
    drops: pa.Table
    quarantine: list[dict]
    pipeline: dict | None = None  # _pipeline.json
    run_stats: dict | None = None  # stats.json (absent until the run finishes)
    sources: dict[str, str] = field(default_factory=dict)  # what was read from where
    shard_files: list[str] | None = None  # names under shards/ (one listing, no reads)
    storage_options: dict | None = None


def _fs(uri: str, storage_options: dict | None) -> tuple[Any, str, str]:
    fs, path = filesystem(uri, storage_options)
    prefix = uri.split("://", 1)[0] + "://" if "://" in uri else ""
    return fs, path, prefix


def _list(fs: Any, path: str, suffix: str) -> list[str]:
    if not fs.exists(path):
        return []
    return sorted(p for p in fs.ls(path, detail=False) if p.endswith(suffix))


def _read_json_file(fs: Any, path: str) -> Any | None:
    if not fs.exists(path):
        return None
    try:
        return json.loads(fs.cat_file(path))
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None


def _read_unit_stats(fs: Any, path: str) -> list[dict]:
    """All ``stats/*.json`` in one batched fetch (s3fs fetches them concurrently)."""
    paths = _list(fs, join(path, "stats"), ".json")
    if not paths:
        return []
    blobs = fs.cat(paths)
    units = []
    for p in paths:
        try:
            units.append(json.loads(blobs[p]))
        except ValueError as exc:
            raise ValueError(f"{p}: not valid JSON: {exc}") from None
    return sorted(units, key=lambda u: str(u.get("unit", "")))


def _read_table(fs: Any, path: str, part_dir: str) -> tuple[pa.Table | None, str]:
    """The merged Parquet file, else the concatenated parts, else None."""
    if fs.exists(path):
        with fs.open(path, "rb") as f:
            return pq.read_table(f), path
    parts = _list(fs, part_dir, ".parquet")
    if not parts:
        return None, "missing"
    tables = []
    for part in parts:
        with fs.open(part, "rb") as f:
            tables.append(pq.read_table(f))
    return pa.concat_tables(tables, promote_options="default"), f"{part_dir}/*.parquet"


def _read_jsonl(fs: Any, paths: list[str]) -> list[dict]:
    records = []
    for p in paths:
        text = fs.cat_file(p).decode("utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"file": p, "line": n, "reason": "unreadable_quarantine_line",
                                "detail": line[:200]})
    return records


def _read_quarantine(fs: Any, path: str) -> tuple[list[dict], str]:
    merged = join(path, "quarantine.jsonl")
    if fs.exists(merged):
        return _read_jsonl(fs, [merged]), merged
    parts = _list(fs, join(path, "_work", "quarantine"), ".jsonl")
    return _read_jsonl(fs, parts), ("_work/quarantine/*.jsonl" if parts else "missing")


def load_output(output: str, storage_options: dict | None = None) -> OutputView:
    """Read an output folder's metadata; raises FileNotFoundError when it holds none."""
    fs, path, _ = _fs(output, storage_options)
    if not fs.exists(path):
        raise FileNotFoundError(f"{output}: no such output folder")
    units = _read_unit_stats(fs, path)
    manifest, m_src = _read_table(fs, join(path, "manifest.parquet"), join(path, "manifest"))
    drops, d_src = _read_table(fs, join(path, "drops.parquet"), join(path, "drops"))
    quarantine, q_src = _read_quarantine(fs, path)
    pipeline = _read_json_file(fs, join(path, "_pipeline.json"))
    run_stats = _read_json_file(fs, join(path, "stats.json"))
    shard_files = [p.rsplit("/", 1)[-1] for p in _list(fs, join(path, "shards"), ".tar")]
    if not units and manifest is None and run_stats is None:
        raise FileNotFoundError(f"{output}: not a curation output (no stats/, "
                                f"manifest or stats.json)")
    return OutputView(
        root=output, units=units,
        manifest=manifest if manifest is not None else MANIFEST_SCHEMA.empty_table(),
        drops=drops if drops is not None else DROPS_SCHEMA.empty_table(),
        quarantine=quarantine, pipeline=pipeline, run_stats=run_stats,
        sources={"manifest": m_src, "drops": d_src, "quarantine": q_src,
                 "units": f"{len(units)} stats/*.json"},
        shard_files=shard_files, storage_options=storage_options)

"""What an output folder holds, from listings and its small JSON files only: which
stats, manifest, drop and quarantine files exist, the shard files with their sizes,
``shards.parquet``, ``stats.json`` and ``_pipeline.json``. Nothing here reads a
manifest row or opens a tar; the streaming passes over the files are in ``scan.py``.

Two layouts are understood:

- ``v2`` (current): ``shards/000000.tar`` filled across units, ``manifest/000000.parquet``
  one part per shard with each sample's ``offset``/``length`` in its tar,
  ``shards.parquet``, ``drops/UNIT.parquet``, ``quarantine/NNNNN.jsonl``;
- ``v1`` (first version): ``shards/UNIT-PP.tar``, ``manifest.parquet`` (or per-unit
  parts ``manifest/UNIT.parquet``), per-unit shard lists in ``stats/UNIT.json``,
  ``drops.parquet`` and ``quarantine.jsonl``.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from curation.inspect.arrow_io import read_parquet
from curation.location import Location
from shards.layout import (
    DROPPED,
    DROPS,
    MANIFEST,
    PIPELINE,
    QUARANTINE,
    SHARD_INDEX,
    SHARDS,
    STATS,
    TOTALS,
)


@dataclass
class OutputView:
    """An output's file listing and small metadata; everything else is streamed."""

    root: str  # as the user gave it
    loc: Location
    layout: str  # "v2" or "v1"
    pipeline: dict | None  # _pipeline.json
    run_stats: dict | None  # stats.json (absent until the run finishes)
    stats_names: list[str]  # under stats/
    manifest_names: list[str]  # relative to the root
    drops_names: list[str]  # relative to the root
    dropped_names: list[str]  # under dropped/ (v2: full records of dropped documents)
    quarantine: tuple[Location, list[str]]  # folder and its .jsonl names
    shard_sizes: dict[str, int]  # shards/*.tar -> bytes (one listing, no reads)
    shard_index: list[dict] | None  # shards.parquet rows (v2, finished runs)
    sources: dict[str, str] = field(default_factory=dict)  # what was read from where

    @property
    def storage_options(self) -> dict:
        return self.loc.options

    @property
    def branches(self) -> list[str]:
        return [str(b) for b in (self.pipeline or {}).get("branches") or []]

    @property
    def lineage(self) -> dict | None:
        lin = (self.pipeline or {}).get("lineage")
        return lin if isinstance(lin, dict) and lin.get("parent") else None


def listing(loc: Location, sub: str = "") -> dict[str, dict[str, Any]]:
    """{name: {"type", "size"}} of the entries directly under ``sub`` (one listing call;
    temp files of writes in progress left out); empty when the folder is absent."""
    target = loc.path(sub) if sub else loc.path()
    loc.fs.invalidate_cache(target)
    try:
        entries = loc.fs.ls(target, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out = {}
    for e in entries:
        name = posixpath.basename(str(e["name"]).rstrip("/"))
        if ".tmp-" not in name and name:
            out[name] = {"type": e.get("type"), "size": int(e.get("size") or 0)}
    return out


def _files(entries: dict[str, dict], suffix: str, prefix: str = "") -> list[str]:
    return sorted(prefix + n for n, e in entries.items()
                  if e["type"] != "directory" and n.endswith(suffix))


def read_json(loc: Location, name: str) -> Any:
    try:
        return json.loads(loc.read_bytes(name))
    except ValueError as exc:
        raise ValueError(f"{loc.join(name)}: not valid JSON: {exc}") from None


def _is_dir(root: dict[str, dict], name: str) -> bool:
    return root.get(name, {}).get("type") == "directory"


def _quarantine(loc: Location, root: dict[str, dict], pipeline: dict | None,
                layout: str) -> tuple[Location, list[str], str]:
    if layout == "v1" and "quarantine.jsonl" in root:
        return loc, ["quarantine.jsonl"], "quarantine.jsonl"
    if layout == "v1" and not _is_dir(root, QUARANTINE):
        work = loc.child("_work", "quarantine")
        names = _files(listing(work), ".jsonl")
        return work, names, "_work/quarantine/*.jsonl" if names else "missing"
    folder = loc.child(QUARANTINE)
    if not _is_dir(root, QUARANTINE) and (pipeline or {}).get("branch"):
        # a branch shares its run's input: the bad records lie in the run's folder
        folder = Location(posixpath.dirname(loc.uri), loc.options).child(QUARANTINE)
    names = _files(listing(folder), ".jsonl")
    return folder, names, (f"{folder.uri}/*.jsonl" if names else "missing")


def load_output(output: str, storage_options: dict | None = None) -> OutputView:
    """List an output folder; raises FileNotFoundError when it is not one."""
    loc = Location.of(output, storage_options)
    root = listing(loc)
    if not root:
        if not loc.exists():
            raise FileNotFoundError(f"{output}: no such output folder")
        raise FileNotFoundError(f"{output}: not a curation output (empty folder)")
    pipeline = read_json(loc, PIPELINE) if PIPELINE in root else None
    run_stats = read_json(loc, TOTALS) if TOTALS in root else None
    stats_names = _files(listing(loc, STATS), ".json") if _is_dir(root, STATS) else []
    parts = _files(listing(loc, MANIFEST), ".parquet", MANIFEST + "/") \
        if _is_dir(root, MANIFEST) else []
    v1 = "manifest.parquet" in root or any("-" in posixpath.basename(p) for p in parts)
    layout = "v1" if v1 else "v2"
    manifest = ["manifest.parquet"] if "manifest.parquet" in root else parts
    drops = ["drops.parquet"] if v1 and "drops.parquet" in root else (
        _files(listing(loc, DROPS), ".parquet", DROPS + "/") if _is_dir(root, DROPS) else [])
    dropped = _files(listing(loc, DROPPED), ".parquet") if _is_dir(root, DROPPED) else []
    shards = listing(loc, SHARDS) if _is_dir(root, SHARDS) else {}
    index = read_parquet(loc, SHARD_INDEX).to_pylist() if SHARD_INDEX in root else None
    if not (stats_names or manifest or run_stats) and pipeline is None:
        raise FileNotFoundError(f"{output}: not a curation output (no _pipeline.json, "
                                "stats/, manifest or stats.json)")
    qloc, qnames, qsrc = _quarantine(loc, root, pipeline, layout)
    view = OutputView(
        root=output, loc=loc, layout=layout, pipeline=pipeline, run_stats=run_stats,
        stats_names=stats_names, manifest_names=manifest, drops_names=drops,
        dropped_names=dropped,
        quarantine=(qloc, qnames),
        shard_sizes={n: e["size"] for n, e in shards.items() if n.endswith(".tar")},
        shard_index=index)
    view.sources = {
        "layout": layout, "units": f"{len(stats_names)} stats/*.json",
        "manifest": _describe(manifest), "drops": _describe(drops), "quarantine": qsrc,
        "shards": f"{len(view.shard_sizes)} shards/*.tar (listed, never opened)",
        "shard_index": SHARD_INDEX if index is not None else "missing"}
    return view


def _describe(names: list[str]) -> str:
    if not names:
        return "missing"
    if len(names) == 1:
        return names[0]
    return f"{posixpath.dirname(names[0])}/*.parquet ({len(names)} files)"

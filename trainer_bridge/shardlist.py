"""Which shards to read and how many samples each holds.

URLs may be local paths or any fsspec URL (``s3://...``), with brace lists
(``shards/00000-{00000..00003}-00.tar``) and globs (``out/shards/*.tar``); an output
folder stands for its ``shards/*.tar``. Sample counts come from the output's
``shards.parquet`` (one row per shard: ``shard``, ``samples``), else its manifest
(``manifest.parquet``, else the ``manifest/*.parquet`` parts), else the older per-unit
``stats/*.json`` shard lists, else by scanning the tar: equal per-rank counts need
them before the first sample is read.
"""

from __future__ import annotations

import importlib.util
import json
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

import fsspec
from braceexpand import braceexpand

from trainer_bridge.tar_reader import count_samples

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Shard:
    """One tar and its sample count."""

    url: str
    count: int


def _fs(url: str, storage_options: dict | None):
    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def _with_protocol(url: str, path: str) -> str:
    if "://" not in url:
        return path
    proto = url.split("://", 1)[0]
    return path if path.startswith(proto + "://") else f"{proto}://{path}"


def _expand_one(url: str, storage_options: dict | None) -> list[str]:
    fs, path = _fs(url, storage_options)
    if any(c in url for c in GLOB_CHARS):
        return sorted(_with_protocol(url, p) for p in fs.glob(path) if p.endswith(".tar"))
    if fs.isdir(path):
        inner = posixpath.join(url.rstrip("/"), "shards")
        base = inner if fs.isdir(_fs(inner, storage_options)[1]) else url.rstrip("/")
        return _expand_one(posixpath.join(base, "*.tar"), storage_options)
    return [url]


def expand_urls(spec: str | Iterable[str], storage_options: dict | None = None) -> list[str]:
    """Shard URLs in a stable order (input order; sorted within one glob)."""
    items = [spec] if isinstance(spec, str) else list(spec)
    urls: list[str] = []
    for item in items:
        for expanded in braceexpand(item):
            urls.extend(_expand_one(expanded, storage_options))
    seen: set[str] = set()
    unique = [u for u in urls if not (u in seen or seen.add(u))]
    if not unique:
        raise FileNotFoundError(f"no shards match {spec!r}")
    return unique


def _output_root(url: str) -> str | None:
    folder = posixpath.dirname(url)
    return posixpath.dirname(folder) if posixpath.basename(folder) == "shards" else None


def _shard_table_counts(root: str, storage_options: dict | None) -> dict[str, int]:
    """shard file name -> samples from ``shards.parquet`` (the current layout)."""
    if importlib.util.find_spec("pyarrow") is None:
        return {}
    fs, path = _fs(root, storage_options)
    table_path = posixpath.join(path, "shards.parquet")
    if not fs.exists(table_path):
        return {}
    table = _read_parquet(fs, table_path, ["shard", "samples"])
    return {posixpath.basename(str(name)): int(n) for name, n in
            zip(table.column("shard").to_pylist(), table.column("samples").to_pylist())}


def _read_parquet(fs, path: str, columns: list[str]):
    """By path when local, else copied into Arrow-owned memory: never an fsspec file
    object or a Python-owned buffer that Arrow's threads may free at interpreter exit
    (the cause of the exit-134 aborts; see shards.reader.open_parquet)."""
    from shards.reader import read_parquet

    return read_parquet(fs, path, columns)


def _manifest_counts(root: str, storage_options: dict | None) -> dict[str, int]:
    """shard file name -> samples, from the merged manifest or its per-unit parts."""
    if importlib.util.find_spec("pyarrow") is None:  # optional for the bridge
        return {}
    fs, path = _fs(root, storage_options)
    merged = posixpath.join(path, "manifest.parquet")
    parts = [merged] if fs.exists(merged) else sorted(
        fs.glob(posixpath.join(path, "manifest", "*.parquet")))
    counts: dict[str, int] = {}
    for part in parts:
        for name in _read_parquet(fs, part, ["shard"]).column("shard").to_pylist():
            name = posixpath.basename(str(name))
            counts[name] = counts.get(name, 0) + 1
    return counts


def _stats_counts(root: str, storage_options: dict | None) -> dict[str, int]:
    fs, path = _fs(root, storage_options)
    counts: dict[str, int] = {}
    for part in sorted(fs.glob(posixpath.join(path, "stats", "*.json"))):
        with fs.open(part, "rb") as f:
            for shard in json.loads(f.read()).get("shards", []):
                counts[shard["name"]] = int(shard["samples"])
    return counts


def output_counts(root: str, storage_options: dict | None = None) -> dict[str, int]:
    """Per-shard sample counts of one output folder: shards.parquet, else the
    manifest, else the per-unit stats."""
    return (_shard_table_counts(root, storage_options)
            or _manifest_counts(root, storage_options)
            or _stats_counts(root, storage_options))


def resolve_shards(spec: str | Iterable[str], counts: dict[str, int] | None = None,
                   storage_options: dict | None = None) -> list[Shard]:
    """Expand ``spec`` and attach a sample count to every shard.

    ``counts`` (shard URL or file name -> samples) overrides what the output folder
    says; shards found nowhere are scanned (reads the whole tar once)."""
    urls = expand_urls(spec, storage_options)
    known: dict[str, int] = dict(counts or {})
    roots: dict[str, dict[str, int]] = {}
    shards = []
    for url in urls:
        name = posixpath.basename(url)
        n = known.get(url, known.get(name))
        root = _output_root(url)
        if n is None and root is not None:
            if root not in roots:
                roots[root] = output_counts(root, storage_options)
            n = roots[root].get(name)
        if n is None:
            n = count_samples(url, storage_options)
        shards.append(Shard(url, int(n)))
    return shards

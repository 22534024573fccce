"""Atomic writes through fsspec: temp name, then rename (local) / single PUT (s3)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


def filesystem(uri: str, storage_options: dict | None = None) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(uri, **(storage_options or {}))


def atomic_write(uri: str, write: Callable[[IO[bytes]], None],
                 storage_options: dict | None = None) -> None:
    """Write to ``uri.tmp-<random>`` then rename, so readers never see a partial file.
    On object stores a PUT is already all-or-nothing, so the object is written directly."""
    fs, path = filesystem(uri, storage_options)
    if "file" not in fs.protocol and "local" not in fs.protocol:
        with fs.open(path, "wb") as f:
            write(f)
        return
    parent = os.path.dirname(path)
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(uri: str, data: bytes, storage_options: dict | None = None) -> None:
    atomic_write(uri, lambda f: f.write(data), storage_options)


def write_json(uri: str, obj: Any, storage_options: dict | None = None) -> None:
    blob = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False).encode()
    write_bytes(uri, blob, storage_options)


def read_json(uri: str, storage_options: dict | None = None) -> Any:
    with fsspec.open(uri, "rb", **(storage_options or {})) as f:
        return json.loads(f.read())


def exists(uri: str, storage_options: dict | None = None) -> bool:
    fs, path = filesystem(uri, storage_options)
    fs.invalidate_cache(path)  # other processes write here; never trust a listing cache
    return fs.exists(path)


def write_parquet(uri: str, rows: list[dict], schema: pa.Schema | None = None,
                  storage_options: dict | None = None) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    atomic_write(uri, lambda f: pq.write_table(table, f), storage_options)


def list_files(uri: str, suffix: str, storage_options: dict | None = None) -> list[str]:
    """Sorted full URIs of files under ``uri`` ending with ``suffix`` (none if absent)."""
    fs, path = filesystem(uri, storage_options)
    fs.invalidate_cache(path)
    if not fs.exists(path):
        return []
    prefix = uri.split("://", 1)[0] + "://" if "://" in uri else ""
    names = [p for p in fs.ls(path, detail=False) if p.endswith(suffix)]
    return sorted(prefix + p if prefix and not p.startswith(prefix) else p for p in names)


def remove(uris: list[str], storage_options: dict | None = None) -> None:
    for uri in uris:
        fs, path = filesystem(uri, storage_options)
        if fs.exists(path):
            fs.rm(path)


def read_parquet_rows(uri: str, storage_options: dict | None = None) -> list[dict]:
    from shards.reader import read_parquet

    fs, path = filesystem(uri, storage_options)
    return read_parquet(fs, path).to_pylist()

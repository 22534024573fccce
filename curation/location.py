"""One object for a place on storage: an fsspec filesystem rooted at a folder.

Built once (from a URI and fsspec options) and passed around instead of
``(uri, storage_options)`` pairs; it pickles into Ray tasks (the filesystem is rebuilt
lazily on the worker). Run state is read by listing a prefix once, never by one
``exists()`` per unit. Writes are atomic: a temp name then a rename on local disks; a
single PUT on object stores, which is already all-or-nothing.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from shards.reader import arrow_buffer


@dataclass(frozen=True)
class Location:
    """A folder (local path or ``s3://bucket/prefix``) and the options to reach it."""

    uri: str
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", self.uri.rstrip("/") or "/")

    @classmethod
    def of(cls, uri: str, storage_options: dict | None = None) -> Location:
        if "://" not in uri:
            uri = os.path.abspath(uri)
        return cls(uri, dict(storage_options or {}))

    # -- navigation -----------------------------------------------------------------
    def child(self, *parts: str) -> Location:
        return Location(self.join(*parts), self.options)

    def join(self, *parts: str) -> str:
        return posixpath.join(self.uri, *parts) if parts else self.uri

    @property
    def remote(self) -> bool:
        return "://" in self.uri and not self.uri.startswith("file://")

    @property
    def fs(self) -> Any:
        cached = self.__dict__.get("_fs")
        if cached is None:
            cached, _ = fsspec.core.url_to_fs(self.uri, **self.options)
            object.__setattr__(self, "_fs", cached)
        return cached

    def path(self, *parts: str) -> str:
        """The filesystem-native path (no protocol) of a child."""
        return fsspec.core.url_to_fs(self.join(*parts), **self.options)[1] \
            if self.remote else self.join(*parts)

    def __getstate__(self) -> dict:
        return {"uri": self.uri, "options": self.options}

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "uri", state["uri"])
        object.__setattr__(self, "options", state["options"])

    # -- listing --------------------------------------------------------------------
    def list(self, suffix: str = "", subdir: str = "") -> list[str]:
        """Sorted names (relative to ``subdir``) of files directly under it ending with
        ``suffix``; empty when the folder does not exist. One listing call."""
        target = self.path(subdir) if subdir else self.path()
        self.fs.invalidate_cache(target)
        try:
            entries = self.fs.ls(target, detail=True)
        except FileNotFoundError:
            return []
        names = [posixpath.basename(e["name"].rstrip("/")) for e in entries
                 if e.get("type") != "directory"]
        return sorted(n for n in names if n.endswith(suffix) and ".tmp-" not in n)

    def exists(self, name: str = "") -> bool:
        target = self.path(name) if name else self.path()
        self.fs.invalidate_cache(target)
        return self.fs.exists(target)

    # -- reading --------------------------------------------------------------------
    def open(self, name: str, mode: str = "rb") -> IO:
        return self.fs.open(self.path(name), mode)

    def read_bytes(self, name: str) -> bytes:
        with self.open(name, "rb") as f:
            return f.read()

    def read_json(self, name: str) -> Any:
        return json.loads(self.read_bytes(name))

    def read_parquet(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """Reads through a local path where there is one: pyarrow's own reader never
        leaves fsspec file objects for the interpreter to tear down at exit."""
        if not self.remote:
            return pq.read_table(self.path(name), columns=columns)
        # Arrow-allocated memory, not pa.py_buffer: a buffer owning a Python object can
        # be released by an Arrow thread during interpreter exit (shards.reader.open_parquet)
        return pq.read_table(arrow_buffer(self.read_bytes(name)), columns=columns)

    # -- writing (atomic) -----------------------------------------------------------
    def write(self, name: str, writer: Callable[[IO[bytes]], None],
              durable: bool = True) -> None:
        """Atomic write. ``durable=False`` skips the fsync: for bulk staging whose
        marker (written durably after it) is what resume trusts."""
        target = self.path(name)
        if self.remote:
            with self.fs.open(target, "wb") as f:
                writer(f)
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "wb") as f:
                writer(f)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def write_bytes(self, name: str, data: bytes, durable: bool = True) -> None:
        self.write(name, lambda f: f.write(data), durable)

    def write_json(self, name: str, obj: Any) -> None:
        blob = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False).encode()
        self.write_bytes(name, blob)

    def write_parquet(self, name: str, table: pa.Table | list[dict],
                      schema: pa.Schema | None = None, durable: bool = True) -> None:
        if not isinstance(table, pa.Table):
            table = pa.Table.from_pylist(table, schema=schema)
        self.write(name, lambda f: pq.write_table(table, f), durable)

    # -- removing -------------------------------------------------------------------
    def remove(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                self.fs.rm(self.path(name))
            except FileNotFoundError:
                pass

    def remove_tree(self, name: str = "") -> None:
        target = self.path(name) if name else self.path()
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

"""Expand input URIs (paths, globs, directories, s3://) and open them through fsspec."""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import fsspec

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".zip")
PARQUET_SUFFIXES = (".parquet",)
SHARD_SUFFIXES = (".tar",)  # curated shards (the output of an earlier run)
INPUT_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES + SHARD_SUFFIXES


def _protocol_prefix(uri: str) -> str:
    return uri.split("://", 1)[0] + "://" if "://" in uri else ""


def expand_inputs(uris: list[str], storage_options: dict | None = None) -> list[str]:
    """Sorted, de-duplicated list of input files. Directories are searched recursively
    for known suffixes. A pattern that matches nothing is an error naming it."""
    from curation.ingest.curated import is_output, output_shards

    out: set[str] = set()
    for uri in uris:
        fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        prefix = _protocol_prefix(uri)
        if any(ch in path for ch in "*?["):
            matches = [m for m in fs.glob(path) if fs.isfile(m)]
        elif fs.isdir(path) and is_output(uri, storage_options):
            matches = [fsspec.core.url_to_fs(s, **(storage_options or {}))[1]
                       for s in output_shards(uri, storage_options)]
            if not matches:
                raise FileNotFoundError(f"{uri}: a curate output without shards")
        elif fs.isdir(path):
            outputs = {posixpath.dirname(m) for m in fs.find(path)
                       if m.endswith("/_pipeline.json")}
            matches = [m for m in fs.find(path) if m.endswith(INPUT_SUFFIXES)
                       and not any(m.startswith(o + "/") for o in outputs)]
            if outputs:
                raise ValueError(
                    f"{uri} holds curate output folder(s) ({', '.join(sorted(outputs))}); "
                    "pass an output folder itself as an input, or the raw files")
        elif fs.exists(path):
            matches = [path]
        else:
            raise FileNotFoundError(f"input not found: {uri}")
        if not matches:
            raise FileNotFoundError(f"input pattern matched no files: {uri}")
        if prefix:
            out.update(m if m.startswith(prefix) else prefix + m for m in matches)
        else:
            out.update(os.path.abspath(m) for m in matches)
    return sorted(out)


def detect_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(SHARD_SUFFIXES):
        return "shards"
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise ValueError(f"{path}: unknown input format (expected {', '.join(INPUT_SUFFIXES)})")


@contextmanager
def open_binary(path: str, storage_options: dict | None = None) -> Iterator[IO[bytes]]:
    with fsspec.open(path, "rb", **(storage_options or {})) as f:
        yield f


def iter_jsonl_streams(
    path: str, storage_options: dict | None = None
) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield (display name, binary stream) for a JSONL file, a .gz, or each JSONL member
    of a .zip (MMC4 ships zips of JSONL)."""
    with open_binary(path, storage_options) as raw:
        if path.lower().endswith(".gz"):
            yield path, gzip.GzipFile(fileobj=raw)
        elif path.lower().endswith(".zip"):
            data = io.BytesIO(raw.read())
            with zipfile.ZipFile(data) as zf:
                for name in sorted(zf.namelist()):
                    if name.endswith("/") or not name.lower().endswith((".jsonl", ".json")):
                        continue
                    with zf.open(name) as member:
                        yield f"{path}!{name}", member
        elif isinstance(raw, io.BufferedIOBase) and not hasattr(raw, "fs"):
            yield path, raw
        else:
            # fsspec remote files lack readline(limit); a BufferedReader adds it.
            yield path, io.BufferedReader(raw, buffer_size=1 << 20)  # type: ignore[arg-type]

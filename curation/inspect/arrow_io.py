"""Read an output's Parquet files and byte ranges, local or remote, a batch at a time,
through ``shards.reader.open_parquet``: never a buffer that a Python object owns, so no
Arrow thread needs the GIL at interpreter exit (why: that function's docstring; it is
the cause of `curate stats` exiting 134 now and then, issue 13 item 4). Also numpy
views of Arrow columns that keep pyarrow from importing pandas."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.location import Location
from shards.reader import open_parquet

FETCH_BATCH = 64  # remote files fetched concurrently per request (s3fs ``cat``)
ROWS_PER_BATCH = 16_384


def parquet_file(loc: Location, name: str, data: bytes | None = None) -> pq.ParquetFile:
    """A ParquetFile over a local path, or over remote bytes (``data`` when already
    fetched) copied into Arrow memory."""
    return open_parquet(loc.fs, loc.path(name), data)


def read_parquet(loc: Location, name: str, columns: list[str] | None = None) -> pa.Table:
    pf = parquet_file(loc, name)
    return pf.read(columns=_present(columns, pf), use_threads=False)


def fetch_many(loc: Location, names: list[str]) -> dict[str, bytes]:
    """Bytes of several remote files in one concurrent request."""
    paths = {loc.path(n): n for n in names}
    blobs = loc.fs.cat(list(paths), on_error="raise")
    if len(paths) == 1 and not isinstance(blobs, dict):
        blobs = {next(iter(paths)): blobs}
    return {paths[p]: b for p, b in blobs.items()}


def iter_files(loc: Location, names: list[str]) -> Iterator[tuple[str, bytes | None]]:
    """(name, bytes or None for local files) in order; remote bytes are fetched
    ``FETCH_BATCH`` at a time, so memory holds one batch."""
    if not loc.remote:
        for name in names:
            yield name, None
        return
    for i in range(0, len(names), FETCH_BATCH):
        chunk = names[i:i + FETCH_BATCH]
        blobs = fetch_many(loc, chunk)
        for name in chunk:
            yield name, blobs[name]


def _present(columns: list[str] | None, pf: pq.ParquetFile) -> list[str] | None:
    """The wanted columns the file has (older outputs lack some)."""
    if columns is None:
        return columns
    have = set(pf.schema_arrow.names)
    return [c for c in columns if c in have]


def iter_batches(loc: Location, names: list[str], columns: list[str]
                 ) -> Iterator[tuple[str, pa.RecordBatch | None]]:
    """(file name, record batch with the ``columns`` it has) over ``names`` in order,
    a bounded number of rows at a time; a file without rows yields (name, None) once."""
    for name, data in iter_files(loc, names):
        pf = parquet_file(loc, name, data)
        wanted = _present(columns, pf)
        if pf.metadata.num_rows == 0:
            yield name, None
            continue
        for batch in pf.iter_batches(batch_size=ROWS_PER_BATCH, columns=wanted,
                                     use_threads=False):
            yield name, batch


def read_range(loc: Location, name: str, start: int, length: int) -> bytes:
    """``length`` bytes of a file from ``start`` (one ranged GET on object stores)."""
    if not loc.remote:
        with open(loc.path(name), "rb") as f:
            f.seek(start)
            return f.read(length)
    return loc.fs.cat_file(loc.path(name), start=start, end=start + length)


# -- Arrow -> numpy without pyarrow's pandas shim -------------------------------------
# Array.to_numpy, group_by, pa.array/pa.scalar of Python values and compute calls with
# Python scalars make pyarrow import pandas (0.3-0.5 s and ~50 MB at start-up);
# `curate stats` needs none of it, so columns reach numpy through their buffers.
NUMPY_TYPES = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32,
               pa.int64(): np.int64, pa.uint8(): np.uint8, pa.uint16(): np.uint16,
               pa.uint32(): np.uint32, pa.uint64(): np.uint64, pa.float32(): np.float32,
               pa.float64(): np.float64}


def as_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def dense_valid(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(every row of a numeric column as float64, which rows are not null)."""
    arr = as_array(arr)
    if pa.types.is_null(arr.type) or len(arr) == 0:
        return np.zeros(len(arr)), np.zeros(len(arr), dtype=bool)
    if arr.type not in NUMPY_TYPES:  # decimals, dates...: Arrow casts, still no pandas
        arr = as_array(pc.cast(arr, pa.float64()))
    dtype = np.dtype(NUMPY_TYPES[arr.type])
    values = np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr),
                           offset=arr.offset * dtype.itemsize).astype(np.float64)
    if not arr.null_count:
        return values, np.ones(len(arr), dtype=bool)
    bits = np.unpackbits(np.frombuffer(arr.buffers()[0], dtype=np.uint8),
                         bitorder="little")[arr.offset:arr.offset + len(arr)]
    return values, bits.astype(bool)


def numpy_of(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The non-null values of a numeric column as float64."""
    values, valid = dense_valid(arr)
    return values[valid]


def dense(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Every row of a numeric column as float64, nulls as 0."""
    values, valid = dense_valid(arr)
    return np.where(valid, values, 0.0)


def codes(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """(a code per row, the distinct values in code order), nulls included as None."""
    enc = pc.dictionary_encode(as_array(arr), null_encoding="encode")
    return numpy_of(enc.indices).astype(np.int64), enc.dictionary.to_pylist()


def count_by(arr: pa.Array | pa.ChunkedArray,
             weights: pa.Array | pa.ChunkedArray | None = None) -> dict:
    """{value: rows} (or {value: sum of ``weights``, nulls as 0}) of a column; a null
    value counts as None."""
    if len(arr) == 0:
        return {}
    idx, values = codes(arr)
    w = dense(weights) if weights is not None else None
    sums = np.bincount(idx, weights=w, minlength=len(values))
    return {v: int(round(n)) for v, n in zip(values, sums) if n}

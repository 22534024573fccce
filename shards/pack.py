"""Pack units' pieces into shards of the writer's size, across unit boundaries.

Units are the unit of work and resume; shards are what a trainer reads, so they are
sized by ``writer.max_samples`` / ``max_bytes`` regardless of how many documents a
unit kept. ``ShardPlanner`` walks the pieces in unit order and cuts greedily: every
shard but the last is full (by samples, or within one sample of the byte limit). The
plan depends only on the pieces, so a resumed run plans the same shards, with the
same names, and skips the ones already written. ``assemble_shard`` copies byte ranges
of the pieces (no re-encoding; inside the kernel where both are local files) and
writes the shard's manifest part last.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.location import Location
from shards.layout import MANIFEST, SHARDS, shard_name
from shards.tarfast import END as TAR_END  # two zero blocks close a tar archive
from shards.writer import MANIFEST_SCHEMA

# copy_file_range errors that mean "not here" (another filesystem on an old kernel,
# a filesystem or sandbox without it): the bytes are then copied through Python
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}


@dataclass
class ShardLimits:
    max_samples: int = 1000
    max_bytes: int = 512 * 1024 * 1024


Ranges = list[tuple[str, int, int]]  # a shard's (piece, first row, count), in order


@dataclass
class ShardPlanner:
    """The greedy cut, one unit at a time: a shard closes as soon as it is full (by
    samples, or when the next sample would pass the byte limit), so it can be written
    while later units are still being processed. Memory: the open shard's ranges."""

    limits: ShardLimits
    shard: int = 0  # index of the open shard
    samples: int = 0
    nbytes: int = 0
    ranges: Ranges = field(default_factory=list)

    def add(self, unit: str, lengths: np.ndarray, start: int = 0) -> list[tuple[int, Ranges]]:
        """Plan rows ``start..`` of ``unit``; returns the shards this closed."""
        closed: list[tuple[int, Ranges]] = []
        limits, i, n = self.limits, start, len(lengths)
        while i < n:
            if self.samples >= limits.max_samples or (
                    self.samples and self.nbytes + int(lengths[i]) > limits.max_bytes):
                closed.append(self._close())
            room = limits.max_samples - self.samples
            cum = np.cumsum(lengths[i:i + room], dtype=np.int64)
            fit = int(np.searchsorted(cum, limits.max_bytes - self.nbytes, side="right"))
            take = max(fit, 1) if self.samples == 0 else fit
            if take == 0:
                closed.append(self._close())
                continue
            self.ranges.append((unit, i, take))
            self.samples += take
            self.nbytes += int(cum[take - 1])
            i += take
        if self.samples >= limits.max_samples:
            closed.append(self._close())
        return closed

    def finish(self) -> list[tuple[int, Ranges]]:
        """The last, partial shard (if any sample is left open)."""
        return [self._close()] if self.ranges else []

    def open_units(self) -> set[str]:
        return {unit for unit, _, _ in self.ranges}

    def _close(self) -> tuple[int, Ranges]:
        done = (self.shard, self.ranges)
        self.shard, self.samples, self.nbytes, self.ranges = self.shard + 1, 0, 0, []
        return done


def cut_shards(pieces: Iterable[tuple[str, np.ndarray]], limits: ShardLimits
               ) -> Iterator[tuple[int, Ranges]]:
    """(shard index, its ranges) from each unit's sample lengths in unit order, all
    at once (a complete set of pieces). Memory: one unit's lengths at a time."""
    planner = ShardPlanner(limits)
    for unit, lengths in pieces:
        yield from planner.add(unit, lengths)
    yield from planner.finish()


class PieceSource(Protocol):
    """Where sample bytes come from: an index table (manifest columns plus each
    sample's ``offset``/``length`` in its tar) and byte ranges of that tar."""

    def index(self, name: str) -> pa.Table: ...

    def read(self, name: str, start: int, end: int) -> bytes: ...


@dataclass
class UnitPieces:
    """The final pass's pieces: ``UNIT.tar`` + ``UNIT.parquet`` in one folder."""

    location: Location

    def index(self, name: str) -> pa.Table:
        return self.location.read_parquet(f"{name}.parquet")

    def read(self, name: str, start: int, end: int) -> bytes:
        return self.location.fs.cat_file(self.location.path(f"{name}.tar"), start=start,
                                         end=end)

    def copy_to(self, name: str, start: int, end: int, f: IO[bytes]) -> bool:
        """Copy a byte range into the local file ``f`` inside the kernel
        (``copy_file_range``: no pass through Python's memory); False where it does
        not apply (remote storage, a platform without it), and the caller reads."""
        if self.location.remote or not hasattr(os, "copy_file_range"):
            return False
        try:
            out = f.fileno()
        except (AttributeError, OSError, ValueError):
            return False
        f.flush()
        with open(self.location.path(f"{name}.tar"), "rb", buffering=0) as src:
            copied, todo = 0, end - start
            try:
                while copied < todo:
                    n = os.copy_file_range(src.fileno(), out, todo - copied, start + copied)
                    if n == 0:
                        raise OSError(f"{src.name}: piece shorter than its index says")
                    copied += n
            except OSError as exc:
                if copied or exc.errno not in _NO_KERNEL_COPY:
                    raise
                return False
        f.seek(0, os.SEEK_END)  # the buffered writer's position follows the file's
        return True


def _spans(rows: pa.Table) -> list[tuple[int, int]]:
    """Byte ranges covering the rows, adjacent samples merged into one read."""
    spans: list[tuple[int, int]] = []
    for off, length in zip(rows["offset"].to_pylist(), rows["length"].to_pylist()):
        if spans and spans[-1][1] == off:
            spans[-1] = (spans[-1][0], off + length)
        else:
            spans.append((off, off + length))
    return spans


def assemble_shard(index: int, ranges: list[tuple[str, int, int]],
                   pieces: Location | PieceSource, output: Location) -> dict:
    """Write shard ``index`` from piece ranges ``(piece, first row, count)``, then its
    manifest part (the marker). Returns the shard's row for ``shards.parquet``."""
    source = UnitPieces(pieces) if isinstance(pieces, Location) else pieces
    name = shard_name(index)
    parts: list[pa.Table] = []
    reads: list[tuple[str, int, int]] = []
    offset = 0
    for piece, first, count in ranges:
        rows = source.index(piece).slice(first, count)
        new_offsets = []
        for start, end in _spans(rows):
            reads.append((piece, start, end))
            offset += end - start
        pos = offset - int(pc.sum(rows["length"]).as_py() or 0)
        for length in rows["length"].to_pylist():
            new_offsets.append(pos)
            pos += length
        rows = rows.set_column(rows.schema.get_field_index("offset"), "offset",
                               pa.array(new_offsets, pa.int64()))
        parts.append(rows.append_column("shard", pa.array([name] * rows.num_rows)))

    copy_to = getattr(source, "copy_to", None)

    def write(f) -> None:
        for piece, start, end in reads:
            if copy_to is None or not copy_to(piece, start, end, f):
                f.write(source.read(piece, start, end))
        f.write(TAR_END)

    output.child(SHARDS).write(name, write)
    manifest = pa.concat_tables(parts).select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA)
    output.child(MANIFEST).write_parquet(name.replace(".tar", ".parquet"), manifest)
    return shard_row(name, manifest)


def shard_row(name: str, manifest: pa.Table) -> dict:
    return {"shard": name, "samples": manifest.num_rows,
            "images": int(pc.sum(manifest["num_images"]).as_py() or 0),
            "bytes": int(pc.sum(manifest["length"]).as_py() or 0) + len(TAR_END)}

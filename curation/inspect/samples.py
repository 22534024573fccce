"""Read samples from shards without trusting the tar: regular members only, no paths,
bounded sizes, nothing extracted to disk. A sample whose manifest row gives its byte
range (``offset``/``length``, current layout) is read alone, with one ranged read;
older outputs are scanned until the wanted keys are in."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

import fsspec

from curation.inspect.arrow_io import read_range
from curation.location import Location
from shards.layout import SHARDS, join
from shards.reader import UnsafeTarError, check_member, split_name

MAX_MEMBER_BYTES = 64 * 1024 * 1024  # a shard member larger than this is skipped
MAX_MEMBERS = 1_000_000


class SampleReadError(ValueError):
    """A shard's bytes are not the sample its manifest row describes."""


@dataclass
class Sample:
    key: str
    shard: str
    record: dict[str, Any] | None = None  # KEY.json (Document.to_dict())
    files: dict[str, bytes] = field(default_factory=dict)  # member suffix -> bytes
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Located:
    """Where a sample lies: its shard and, in the current layout, its byte range."""

    key: str
    shard: str
    offset: int | None = None
    length: int | None = None


def _member_ok(m: tarfile.TarInfo, where: str, problems: list[str]) -> bool:
    """The shard reader's safety rules; a refused member is skipped and reported."""
    try:
        check_member(m, where, MAX_MEMBER_BYTES)
    except UnsafeTarError as exc:
        problems.append(f"skipped: {exc}")
        return False
    return True


def read_located(loc: Location, at: Located) -> Sample:
    """One sample from its byte range; raises SampleReadError when those bytes are not
    a tar fragment holding exactly that sample with a readable JSON record."""
    if at.offset is None or at.length is None:
        found = read_shard_samples(loc, at.shard, {at.key})
        if at.key not in found or found[at.key].record is None:
            raise SampleReadError(f"{join(loc.uri, SHARDS, at.shard)}: no readable sample "
                                  f"{at.key}")
        return found[at.key]
    where = f"{join(loc.uri, SHARDS, at.shard)} bytes {at.offset}-{at.offset + at.length}"
    try:
        data = read_range(loc.child(SHARDS), at.shard, at.offset, at.length)
    except OSError as exc:
        raise SampleReadError(f"{where}: cannot read ({type(exc).__name__}: {exc})") \
            from None
    if len(data) != at.length:
        raise SampleReadError(f"{where}: only {len(data)} bytes there (truncated shard?)")
    sample = Sample(at.key, at.shard)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for m in tf:
                key, suffix = split_name(m.name)
                if key != at.key:
                    raise SampleReadError(f"{where}: member {m.name!r} is not part of "
                                          f"sample {at.key} (manifest and shard disagree)")
                if not _member_ok(m, where, sample.problems):
                    continue
                payload = tf.extractfile(m).read()  # type: ignore[union-attr]
                if suffix == "json":
                    sample.record = _parse(payload, f"{where}:{m.name}", sample.problems)
                else:
                    sample.files[suffix] = payload
    except tarfile.TarError as exc:
        raise SampleReadError(f"{where}: not a tar fragment ({exc})") from None
    if sample.record is None:
        raise SampleReadError(f"{where}: no readable {at.key}.json record "
                              f"{'; '.join(sample.problems)}".rstrip())
    return sample


def read_shard_samples(loc: Location | str, shard: str, keys: set[str],
                       storage_options: dict | None = None) -> dict[str, Sample]:
    """The samples ``keys`` of one shard, scanning it from the start (outputs without
    byte ranges); missing keys are absent from the result."""
    root = loc if isinstance(loc, Location) else Location.of(loc, storage_options)
    uri = join(root.uri, SHARDS, shard)
    found: dict[str, Sample] = {}
    problems: list[str] = []
    with fsspec.open(uri, "rb", **root.options) as f, \
            tarfile.open(fileobj=f, mode="r:") as tf:
        for n, m in enumerate(tf):
            if n >= MAX_MEMBERS:
                break
            key, _, suffix = m.name.partition(".")
            if key not in keys or not _member_ok(m, uri, problems):
                if key not in keys and found and _all_done(found, keys):
                    break
                continue
            data = tf.extractfile(m).read()  # type: ignore[union-attr]
            sample = found.setdefault(key, Sample(key, shard))
            if suffix == "json":
                sample.record = _parse(data, f"{uri}:{m.name}", sample.problems)
            else:
                sample.files[suffix] = data
    for s in found.values():
        s.problems.extend(problems)
    return found


def _all_done(found: dict[str, Sample], keys: set[str]) -> bool:
    return len(found) == len(keys) and all(s.record is not None for s in found.values())


def _parse(data: bytes, where: str, problems: list[str]) -> dict | None:
    try:
        return json.loads(data)
    except ValueError as exc:
        problems.append(f"{where}: not valid JSON: {exc}")
        return None

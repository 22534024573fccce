"""Read a few samples from shards without trusting the tar: regular members only, no
paths, bounded sizes, nothing extracted to disk; stop as soon as the wanted keys are in."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

import fsspec

from shards.layout import join
from shards.reader import UnsafeTarError, check_member

MAX_MEMBER_BYTES = 64 * 1024 * 1024  # a shard member larger than this is skipped
MAX_MEMBERS = 1_000_000


@dataclass
class Sample:
    key: str
    shard: str
    record: dict[str, Any] | None = None  # KEY.json (Document.to_dict())
    files: dict[str, bytes] = field(default_factory=dict)  # member suffix -> bytes
    problems: list[str] = field(default_factory=list)


def _member_ok(m: tarfile.TarInfo, where: str, problems: list[str]) -> bool:
    """The shard reader's safety rules; a refused member is skipped and reported."""
    try:
        check_member(m, where, MAX_MEMBER_BYTES)
    except UnsafeTarError as exc:
        problems.append(f"skipped: {exc}")
        return False
    return True


def read_shard_samples(output: str, shard: str, keys: set[str],
                       storage_options: dict | None = None) -> dict[str, Sample]:
    """The samples ``keys`` of one shard (missing keys are absent from the result)."""
    uri = join(output, "shards", shard)
    found: dict[str, Sample] = {}
    problems: list[str] = []
    with fsspec.open(uri, "rb", **(storage_options or {})) as f, \
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


def read_samples(output: str, key_shards: dict[str, str],
                 storage_options: dict | None = None) -> dict[str, Sample]:
    """{key: Sample} for ``{key: shard}``, opening each shard once."""
    by_shard: dict[str, set[str]] = {}
    for key, shard in key_shards.items():
        by_shard.setdefault(shard, set()).add(key)
    out: dict[str, Sample] = {}
    for shard, keys in sorted(by_shard.items()):
        out.update(read_shard_samples(output, shard, keys, storage_options))
    return out

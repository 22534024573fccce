"""Safe, positional reading of one shard.

Uses the project's one set of tar rules (``shards.reader``: no links, no '..', no
absolute names, no devices, bounded sizes) instead of webdataset's reader, and adds
what a resumable loader needs: read samples ``[start, stop)`` of a shard without
keeping the bytes of the skipped ones, and fail loudly, naming the shard, when it
holds fewer samples than its manifest promised (that would unbalance the ranks).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import IO, Any

import fsspec

from shards.reader import UnsafeTarError, check_member, split_name

__all__ = ["ShardCountError", "UnsafeTarError", "count_samples", "read_samples"]


class ShardCountError(ValueError):
    """A shard holds fewer samples than the count it was planned with."""


def _iter_grouped(tf: tarfile.TarFile, where: str, start: int,
                  stop: int | None) -> Iterator[dict[str, Any]]:
    index = -1
    current: dict[str, Any] | None = None
    for member in tf:
        check_member(member, where)
        key, suffix = split_name(member.name)
        if current is None or current["__key__"] != key:
            if current is not None and index >= start:
                yield current
            index += 1
            if stop is not None and index >= stop:
                return
            current = {"__key__": key, "__url__": where, "__index__": index}
        if index >= start:
            data = tf.extractfile(member)
            current[suffix] = data.read() if data is not None else b""
    if current is not None and index >= start:
        yield current


def _open(url: str, storage_options: dict | None) -> IO[bytes]:
    """Local paths through the OS directly (tarfile makes many small reads; the fsspec
    wrapper costs ~10% there), anything else through fsspec."""
    if "://" not in url or url.startswith("file://"):
        return open(url.removeprefix("file://"), "rb")  # noqa: SIM115 - caller closes
    return fsspec.open(url, "rb", **(storage_options or {})).open()


def read_samples(url: str, start: int = 0, stop: int | None = None,
                 storage_options: dict | None = None) -> Iterator[dict[str, Any]]:
    """Samples ``start..stop-1`` of a shard as ``{"__key__", "__url__", suffix: bytes}``.

    Raises ShardCountError when the shard ends before ``stop``."""
    produced = 0
    with _open(url, storage_options) as f, tarfile.open(fileobj=f, mode="r|*") as tf:
        for sample in _iter_grouped(tf, url, start, stop):
            produced += 1
            yield sample
    if stop is not None and produced < stop - start:
        raise ShardCountError(f"{url}: has {start + produced} samples, expected at least "
                              f"{stop} (stale manifest or counts?)")


def count_samples(url: str, storage_options: dict | None = None) -> int:
    """Number of samples (distinct keys) in a shard; reads headers, checks every member."""
    keys = 0
    last = None
    with _open(url, storage_options) as f, tarfile.open(fileobj=f, mode="r|*") as tf:
        for member in tf:
            check_member(member, url)
            key = split_name(member.name)[0]
            if key != last:
                keys, last = keys + 1, key
    return keys

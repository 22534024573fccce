"""Read shards without trusting them: regular members only, no paths that climb out
('..'), no absolute names, no links or devices, bounded member sizes; nothing is
extracted to disk. Members are grouped into samples by key, as WebDataset does."""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from typing import IO, Any

import fsspec

from shards.tarfast import iter_tar

MAX_MEMBER_BYTES = 256 * 1024 * 1024


class UnsafeTarError(ValueError):
    """A shard holds a member this project never writes (link, path escape, device)."""


def check_member(member: tarfile.TarInfo, where: str,
                 max_bytes: int = MAX_MEMBER_BYTES) -> None:
    name = member.name
    if member.issym() or member.islnk():
        raise UnsafeTarError(f"{where}: member {name!r} is a link; refused")
    if not member.isreg():
        raise UnsafeTarError(f"{where}: member {name!r} is not a regular file; refused")
    if name.startswith("/") or name.startswith("\\") or ":" in name.split("/", 1)[0]:
        raise UnsafeTarError(f"{where}: member {name!r} has an absolute path; refused")
    if ".." in posixpath.normpath(name).split("/") or "\\" in name:
        raise UnsafeTarError(f"{where}: member {name!r} escapes its folder; refused")
    if member.size > max_bytes:
        raise UnsafeTarError(f"{where}: member {name!r} is {member.size} bytes "
                             f"(limit {max_bytes}); refused")


def split_name(name: str) -> tuple[str, str]:
    """``dir/KEY.0.jpg`` -> (``dir/KEY``, ``0.jpg``): the key ends at the first dot of
    the base name, as WebDataset groups members."""
    folder, base = posixpath.split(name)
    key, _, suffix = base.partition(".")
    return posixpath.join(folder, key) if folder else key, suffix


def check_entry(name: str, kind: str, size: int, where: str,
                max_bytes: int = MAX_MEMBER_BYTES) -> None:
    """``check_member`` for a raw header: ``kind`` is the tar type flag."""
    info = tarfile.TarInfo(name)
    info.type = {"0": tarfile.REGTYPE, "7": tarfile.CONTTYPE}.get(kind, kind.encode())
    info.size = size
    check_member(info, where, max_bytes)


def iter_members(fileobj: IO[bytes], where: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every member, streaming; raises UnsafeTarError on a bad one."""
    yield from iter_tar(fileobj, where,
                        lambda name, kind, size: check_entry(name, kind, size, where))


def iter_samples(fileobj: IO[bytes], where: str) -> Iterator[dict[str, Any]]:
    """WebDataset-style samples ``{"__key__", "__url__", suffix: bytes, ...}``."""
    current: dict[str, Any] | None = None
    for name, data in iter_members(fileobj, where):
        key, suffix = split_name(name)
        if current is not None and current["__key__"] != key:
            yield current
            current = None
        if current is None:
            current = {"__key__": key, "__url__": where}
        current[suffix] = data
    if current is not None:
        yield current


def read_shard(uri: str, storage_options: dict | None = None) -> Iterator[dict[str, Any]]:
    """Samples of one shard, local or remote (fsspec)."""
    with fsspec.open(uri, "rb", **(storage_options or {})) as f:
        yield from iter_samples(f, uri)

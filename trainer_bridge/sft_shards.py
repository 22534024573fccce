"""SFT records from curated shards (``curate run`` with ``ingest: {format: llava}``).

One pass over the shards' tar headers builds the LLaVA records (from each sample's
``json``) and an index of where each image's bytes lie; images are read on demand by
offset, so a large SFT set is not held in memory. A record is kept only when every
one of its images survived curation (an image dropped by a filter would leave its
``<image>`` marker without a picture); the rest are counted by reason in ``skipped``.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import fsspec

from shards.reader import check_member, split_name
from trainer_bridge.shardlist import expand_urls

LLAVA_SOURCE = "llava"


def _open(url: str, storage_options: dict | None):
    if "://" not in url or url.startswith("file://"):
        return open(url.removeprefix("file://"), "rb")  # noqa: SIM115 - caller closes
    return fsspec.open(url, "rb", **(storage_options or {})).open()


def record_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The LLaVA record a ``llava`` Document stands for: its ingest keeps every field
    but ``conversations`` in metadata, plus the turns' ``roles``; texts are the values."""
    record = dict(doc.get("metadata") or {})
    roles = record.pop("roles", None) or []
    record["conversations"] = [{"from": r, "value": v}
                               for r, v in zip(roles, doc.get("texts", []))]
    return record


@dataclass
class ShardConversations:
    """Records and an image store over shards (``.get(name)`` reads one member)."""

    spec: str | list[str]
    storage_options: dict | None = None
    records: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    _where: dict[str, tuple[str, int, int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for url in expand_urls(self.spec, self.storage_options):
            self._scan(url)

    def _scan(self, url: str) -> None:
        docs: dict[str, bytes] = {}
        with _open(url, self.storage_options) as f, tarfile.open(fileobj=f, mode="r:") as tf:
            for member in tf:
                check_member(member, url)
                key, suffix = split_name(member.name)
                if suffix == "json":
                    docs[key] = tf.extractfile(member).read()
                else:
                    self._where[f"{key}.{suffix}"] = (url, member.offset_data, member.size)
        for key, payload in docs.items():
            self._add(key, json.loads(payload))

    def _add(self, key: str, doc: dict) -> None:
        if doc.get("source") != LLAVA_SOURCE:
            self.skipped[f"source:{doc.get('source')}"] += 1
            return
        images = doc.get("images", [])
        if any(im.get("status") != "ok" or not im.get("member") for im in images):
            self.skipped["image_dropped"] += 1
            return
        record = record_of(doc)
        record.pop("image", None)  # original paths/URLs: the bytes are in the shard now
        if images:
            record["image"] = [f"{key}.{im['member']}" for im in images]
        self.records.append(record)

    def get(self, name: str) -> bytes:
        if name not in self._where:
            raise KeyError(f"image {name!r} is in none of the shards")
        url, offset, size = self._where[name]
        with _open(url, self.storage_options) as f:
            f.seek(offset)
            return f.read(size)

"""A curate output as the input of another run: its shards' documents, with their
image bytes, scores and metadata intact.

Only the written samples are read: documents the earlier run dropped stay dropped
and are not counted again. Image bytes are handed on as they are (never decoded), so
a filter-only pipeline over curated shards re-cuts stored scores at shard-read speed.
Tars are read with the safe reader (no links, no paths that climb out).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from curation.document import Document
from curation.ingest.quarantine import QuarantineRecord, excerpt_of
from curation.location import Location
from shards.layout import PIPELINE, SHARD_INDEX, SHARDS
from shards.reader import UnsafeTarError, read_shard


def is_output(uri: str, storage_options: dict | None = None) -> bool:
    """A folder holding a curate run: ``_pipeline.json`` and shards."""
    loc = Location.of(uri, storage_options)
    return loc.exists(PIPELINE) and (loc.exists(SHARD_INDEX) or loc.exists(SHARDS))


def output_of(shard_uri: str, storage_options: dict | None = None) -> str | None:
    """The output folder a shard belongs to (``OUT/shards/x.tar`` -> ``OUT``)."""
    parent = shard_uri.rsplit("/", 2)
    if len(parent) == 3 and parent[1] == SHARDS and is_output(parent[0], storage_options):
        return parent[0]
    return None


def output_shards(uri: str, storage_options: dict | None = None) -> list[str]:
    """The shards of a finished output, in order (``shards.parquet``, else a listing)."""
    loc = Location.of(uri, storage_options)
    if loc.exists(SHARD_INDEX):
        names = loc.read_parquet(SHARD_INDEX, columns=["shard"])["shard"].to_pylist()
    else:
        names = loc.list(".tar", SHARDS)
    return [loc.join(SHARDS, n) for n in names]


def lineage(uri: str, storage_options: dict | None = None) -> dict[str, Any]:
    """What the new run records about the output it reads."""
    record = Location.of(uri, storage_options).read_json(PIPELINE)
    return {"parent": Location.of(uri, storage_options).uri,
            "parent_fingerprint": record.get("fingerprint"),
            "parent_name": record.get("name"), "parent_stages": record.get("stages", [])}


def read_curated(path: str, storage_options: dict | None = None
                 ) -> Iterator[Document | QuarantineRecord]:
    """Documents of one shard; a sample that is not a curate document is quarantined."""
    try:
        for index, sample in enumerate(read_shard(path, storage_options)):
            key = sample.get("__key__", "?")
            raw = sample.get("json")
            try:
                doc = Document.from_dict(json.loads(raw))
                for im in doc.images:
                    if im.member:
                        im.data = sample[im.member]
            except (KeyError, TypeError, ValueError) as exc:
                yield QuarantineRecord(path, "not_a_curated_sample", f"{key}: {exc}",
                                       row=index, excerpt=excerpt_of(raw or b""))
                continue
            yield doc
    except UnsafeTarError as exc:
        yield QuarantineRecord(path, "unsafe_tar", str(exc))

"""Write one work unit's result: a piece (its kept samples as a tar fragment, with a
sample index), its drop tables, and its stats (written last: the unit's marker).

Pieces are packed into shards of the writer's size across units afterwards
(``shards/pack.py``). Sample layout: ``KEY.json`` (the document record; kept images
carry ``member``) and ``KEY.0.jpg``, ``KEY.1.png``, ... (kept image bytes in document
order, extension from the real format). Tar headers are plain USTAR, deterministic
(fixed mtime, owner and mode; ``shards/tarfast.py``), so a rewritten unit produces
the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa

from curation.document import Document, ImageRecord
from curation.location import Location
from shards.layout import DROPPED, DROPS, IMAGE_EXTENSIONS, STATS, sample_key
from shards.tarfast import member_parts

LIVE = ("ok", "pending")


def sample_members(doc: Document) -> dict[str, bytes]:
    """The tar members of one sample (without the key); sets ``member`` on kept images."""
    members: dict[str, bytes] = {}
    n = 0
    for im in doc.images:
        im.member = None
        if im.kept and im.data is not None:
            ext = IMAGE_EXTENSIONS.get(im.mime or "", "jpg")
            im.member = f"{n}.{ext}"
            members[im.member] = im.data
            n += 1
    members["json"] = json.dumps(doc.to_dict(), ensure_ascii=False,
                                 allow_nan=False).encode("utf-8")
    return members


def count_unit(docs: list[Document]) -> dict:
    """Counts of one unit; every document and image is accounted for by a reason."""
    doc_drops: Counter[str] = Counter()
    image_status: Counter[str] = Counter()
    image_drops: Counter[str] = Counter()
    for doc in docs:
        if not doc.kept:
            doc_drops[f"{doc.dropped_by}:{doc.drop_reason}"] += 1
        for im in doc.images:
            image_status[im.status] += 1
            if not im.kept:
                image_drops[f"{im.dropped_by}:{im.status}"] += 1
    return {
        "documents_in": len(docs),
        "documents_dropped": dict(doc_drops),
        "images_in": sum(len(d.images) for d in docs),
        "image_status": dict(image_status),
        "images_dropped": dict(image_drops),
        "sources": dict(Counter(d.source for d in docs)),
    }


def _margin(im: ImageRecord) -> float | None:
    """Assignment strength: matched similarity minus the best other sentence's."""
    sims, j = im.similarities, im.matched_text_index
    if (not sims or len(sims) < 2 or j is None or not 0 <= j < len(sims)
            or any(s is None for s in sims)):
        return None
    return float(sims[j] - max(s for i, s in enumerate(sims) if i != j))


def manifest_extras(doc: Document) -> dict:
    """Per-document columns for `curate stats` distributions (written images only)."""
    written = [im for im in doc.images if im.member is not None]
    return {"text_chars": sum(len(t) for t in doc.texts),
            "image_widths": [im.width for im in written],
            "image_heights": [im.height for im in written],
            "image_sims": [im.matched_sim for im in written],
            "image_margins": [_margin(im) for im in written]}


def piece_bytes(docs: list[Document], unit_id: str) -> tuple[bytes, list[dict]]:
    """The kept samples of a unit as a tar fragment (no end-of-archive blocks) and one
    index row per sample: manifest columns plus its byte ``offset``/``length``."""
    parts: list[bytes] = []  # headers, data and padding: joined once, at the end
    rows: list[dict] = []
    offset = 0
    for position, doc in enumerate(docs):
        if not doc.kept:
            continue
        members = sample_members(doc)
        key = sample_key(unit_id, position)
        length = data_bytes = 0
        for suffix, data in members.items():
            member = member_parts(f"{key}.{suffix}", data)
            parts += member
            data_bytes += len(data)
            length += sum(len(p) for p in member)
        rows.append({"key": key, "unit": unit_id, "doc_id": doc.doc_id,
                     "source": doc.source, "num_images": len(members) - 1,
                     "num_texts": len(doc.texts), "bytes": data_bytes,
                     **manifest_extras(doc), "offset": offset, "length": length})
        offset += length
    return b"".join(parts), rows


def drop_rows(docs: list[Document], unit_id: str) -> tuple[list[dict], list[dict]]:
    """The narrow drop table and the full records of the unit's dropped documents."""
    narrow, full = [], []
    for position, d in enumerate(docs):
        if d.kept:
            continue
        narrow.append({"doc_id": d.doc_id, "source": d.source, "stage": d.dropped_by,
                       "reason": d.drop_reason, "location": d.provenance.location(),
                       "unit": unit_id, "position": position, "num_images": len(d.images),
                       "images_with_doc": sum(im.status in LIVE for im in d.images)})
        full.append({"doc_id": d.doc_id, "position": position,
                     "record": json.dumps(d.to_dict(), ensure_ascii=False,
                                          allow_nan=False)})
    return narrow, full


def write_unit(docs: list[Document], unit_id: str, output: Location,
               pieces: Location) -> tuple[dict, list[int]]:
    """Write a unit's piece, drop tables and stats (last); return the stats and the
    piece's sample lengths (what shard planning needs)."""
    data, index = piece_bytes(docs, unit_id)
    pieces.write_bytes(f"{unit_id}.tar", data, durable=False)  # staging: the stats
    pieces.write_parquet(f"{unit_id}.parquet", index, PIECE_SCHEMA, durable=False)
    narrow, full = drop_rows(docs, unit_id)
    output.child(DROPS).write_parquet(f"{unit_id}.parquet", narrow, DROPS_SCHEMA)
    output.child(DROPPED).write_parquet(f"{unit_id}.parquet", full, DROPPED_SCHEMA)
    stats = {"unit": unit_id, **count_unit(docs),
             "documents_written": len(index),
             "images_written": sum(r["num_images"] for r in index),
             "bytes_written": sum(r["bytes"] for r in index)}
    output.child(STATS).write_json(f"{unit_id}.json", stats)
    return stats, [r["length"] for r in index]


MANIFEST_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("unit", pa.string()),
    ("doc_id", pa.string()), ("source", pa.string()), ("num_images", pa.int32()),
    ("num_texts", pa.int32()), ("bytes", pa.int64()), ("text_chars", pa.int64()),
    ("image_widths", pa.list_(pa.int32())), ("image_heights", pa.list_(pa.int32())),
    ("image_sims", pa.list_(pa.float32())), ("image_margins", pa.list_(pa.float32())),
    ("offset", pa.int64()), ("length", pa.int64()),
])
PIECE_SCHEMA = pa.schema([f for f in MANIFEST_SCHEMA if f.name != "shard"])
DROPS_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("source", pa.string()), ("stage", pa.string()),
    ("reason", pa.string()), ("location", pa.string()), ("unit", pa.string()),
    ("position", pa.int32()),
    # images that leave with the document (status ok or pending): `curate stats` funnel
    ("num_images", pa.int32()), ("images_with_doc", pa.int32()),
])
DROPPED_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("position", pa.int32()),
    ("record", pa.string()),  # the dropped Document (JSON): inspectable, retryable
])
SHARD_INDEX_SCHEMA = pa.schema([
    ("shard", pa.string()), ("samples", pa.int64()), ("images", pa.int64()),
    ("bytes", pa.int64()),
])

"""Write one work unit's documents as WebDataset shards, a manifest part, a drop table
and a stats file (written last: the unit's completion marker).

Sample layout: ``KEY.json`` (the document record; kept images carry ``member``) and
``KEY.0.jpg``, ``KEY.1.png``, ... (kept image bytes in document order, extension from
the real format). Shards are bounded by samples and bytes.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import webdataset as wds

from curation.document import Document, ImageRecord
from curation.storage import atomic_write, list_files, remove, write_json, write_parquet
from shards.layout import IMAGE_EXTENSIONS, join, sample_key, shard_name


@dataclass
class ShardLimits:
    max_samples: int = 1000
    max_bytes: int = 512 * 1024 * 1024


@dataclass
class _OpenShard:
    name: str
    buffer: io.BytesIO = field(default_factory=io.BytesIO)
    samples: int = 0
    images: int = 0
    nbytes: int = 0


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


def _remove_stale_shards(output: str, unit_id: str, keep: set[str],
                         storage_options: dict | None) -> None:
    """A unit rewritten with fewer shards (resume, --retry-failed) must not leave its
    old higher-numbered shards behind: they would duplicate samples."""
    old = list_files(join(output, "shards"), ".tar", storage_options)
    stale = [p for p in old if p.rsplit("/", 1)[-1].startswith(f"{unit_id}-")
             and p.rsplit("/", 1)[-1] not in keep]
    remove(stale, storage_options)


def write_unit(docs: list[Document], output: str, unit_id: str, limits: ShardLimits,
               storage_options: dict | None = None) -> dict:
    """Write the kept documents of a unit; return (and store) the unit's stats."""
    shards: list[_OpenShard] = []
    manifest: list[dict] = []
    current: _OpenShard | None = None
    writer: wds.TarWriter | None = None

    def close() -> None:
        if writer is not None:
            writer.close()

    kept = [d for d in docs if d.kept]
    for index, doc in enumerate(kept):
        members = sample_members(doc)
        size = sum(len(v) for v in members.values())
        full = current is not None and (
            current.samples >= limits.max_samples
            or (current.samples > 0 and current.nbytes + size > limits.max_bytes))
        if current is None or full:
            close()
            current = _OpenShard(shard_name(unit_id, len(shards)))
            shards.append(current)
            writer = wds.TarWriter(current.buffer)
        key = sample_key(unit_id, index)
        writer.write({"__key__": key, **members})
        n_images = len(members) - 1
        current.samples += 1
        current.images += n_images
        current.nbytes += size
        manifest.append({"key": key, "shard": current.name, "doc_id": doc.doc_id,
                         "source": doc.source, "num_images": n_images,
                         "num_texts": len(doc.texts), "bytes": size,
                         **manifest_extras(doc)})
    close()
    _remove_stale_shards(output, unit_id, {s.name for s in shards}, storage_options)
    for shard in shards:
        data = shard.buffer.getvalue()
        atomic_write(join(output, "shards", shard.name), lambda f, d=data: f.write(d),
                     storage_options)
    drops = [{"doc_id": d.doc_id, "source": d.source, "stage": d.dropped_by,
              "reason": d.drop_reason, "location": d.provenance.location(),
              "unit": unit_id, "num_images": len(d.images),
              "images_with_doc": sum(im.status in ("ok", "pending") for im in d.images),
              "record": json.dumps(d.to_dict(), ensure_ascii=False, allow_nan=False)}
             for d in docs if not d.kept]
    write_parquet(join(output, "manifest", f"{unit_id}.parquet"), manifest,
                  schema=MANIFEST_SCHEMA, storage_options=storage_options)
    write_parquet(join(output, "drops", f"{unit_id}.parquet"), drops, schema=DROPS_SCHEMA,
                  storage_options=storage_options)
    stats = {
        "unit": unit_id,
        **count_unit(docs),
        "documents_written": len(kept),
        "images_written": sum(s.images for s in shards),
        "bytes_written": sum(s.nbytes for s in shards),
        "shards": [{"name": s.name, "samples": s.samples, "images": s.images,
                    "bytes": s.nbytes} for s in shards],
    }
    write_json(join(output, "stats", f"{unit_id}.json"), stats, storage_options)
    return stats


MANIFEST_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("doc_id", pa.string()),
    ("source", pa.string()), ("num_images", pa.int32()), ("num_texts", pa.int32()),
    ("bytes", pa.int64()), ("text_chars", pa.int64()),
    ("image_widths", pa.list_(pa.int32())), ("image_heights", pa.list_(pa.int32())),
    ("image_sims", pa.list_(pa.float32())), ("image_margins", pa.list_(pa.float32())),
])
DROPS_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("source", pa.string()), ("stage", pa.string()),
    ("reason", pa.string()), ("location", pa.string()), ("unit", pa.string()),
    # images that leave with the document (status ok or pending): `curate stats` funnel
    ("num_images", pa.int32()), ("images_with_doc", pa.int32()),
    ("record", pa.string()),  # the dropped Document (JSON): inspectable, retryable
])

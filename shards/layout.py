"""Where things live in an output folder (local path or s3:// URI).

    OUTPUT/_pipeline.json            config + fingerprint + inputs (resume guard)
    OUTPUT/shards/UNIT-PP.tar        WebDataset shards
    OUTPUT/stats/UNIT.json           per-unit stats with per-shard entries; written
                                     last, so it is the unit's completion marker
    OUTPUT/manifest/UNIT.parquet     manifest rows of one unit
    OUTPUT/drops/UNIT.parquet        dropped documents of one unit (doc_id, reason, ...)
    OUTPUT/manifest.parquet          all manifest rows (written when the run finishes)
    OUTPUT/drops.parquet             all dropped documents
    OUTPUT/quarantine.jsonl          all bad input records with file, line and reason
    OUTPUT/stats.json                run totals (sums of the unit stats)
    OUTPUT/_work/                    staging (ingested units, global-stage decisions)
"""

from __future__ import annotations

import posixpath

IMAGE_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}


def join(root: str, *parts: str) -> str:
    return posixpath.join(root.rstrip("/"), *parts)


def shard_name(unit_id: str, part: int) -> str:
    return f"{unit_id}-{part:02d}.tar"


def sample_key(unit_id: str, index: int) -> str:
    """Dot-free key so every WebDataset reader groups a sample's members right."""
    return f"{unit_id}-{index:06d}"


def unit_id_for(file_index: int, chunk: int) -> str:
    return f"{file_index:05d}-{chunk:05d}"

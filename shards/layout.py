"""Where things live in an output folder (local path or s3:// URI).

    OUTPUT/_pipeline.json            config, fingerprint, inputs, lineage (resume guard)
    OUTPUT/shards/000000.tar         WebDataset shards, filled to the writer's limits
                                     across work units, numbered in input order
    OUTPUT/shards.parquet            one row per shard: shard, samples, images, bytes
    OUTPUT/manifest/000000.parquet   one part per shard, one row per sample (key, shard,
                                     unit, doc_id, ..., offset/length in the tar);
                                     written after its shard: the shard's marker
    OUTPUT/stats/UNIT.json           per-unit counts: the unit's completion marker
    OUTPUT/drops/UNIT.parquet        narrow drop table of a unit (doc_id, stage, reason...)
    OUTPUT/dropped/UNIT.parquet      full records of the unit's dropped documents
    OUTPUT/quarantine/NNNNN.jsonl    bad records of input file NNNNN, with line and reason
    OUTPUT/stats.json                run totals: the run's completion marker
    OUTPUT/_logs/                    one log file per run (per-unit detail)
    OUTPUT/_work/                    staging; removed after a successful run
    OUTPUT/BRANCH/...                the same layout for each branch of a branched pipeline
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

SHARDS = "shards"
SHARD_INDEX = "shards.parquet"
MANIFEST = "manifest"
STATS = "stats"
DROPS = "drops"
DROPPED = "dropped"
QUARANTINE = "quarantine"
TOTALS = "stats.json"
PIPELINE = "_pipeline.json"
LOGS = "_logs"
WORK = "_work"


def join(root: str, *parts: str) -> str:
    return posixpath.join(root.rstrip("/"), *parts)


def shard_name(index: int) -> str:
    """``000123.tar``: shards are numbered in input order across the whole run."""
    return f"{index:06d}.tar"


def shard_stem(name: str) -> str:
    return name.rsplit("/", 1)[-1].removesuffix(".tar")


def sample_key(unit_id: str, position: int) -> str:
    """Dot-free key (every WebDataset reader groups a sample's members right); the
    position is the document's index in its unit, so a key never changes."""
    return f"{unit_id}-{position:06d}"


def unit_of_key(key: str) -> str:
    return key.rsplit("-", 1)[0]


def unit_id_for(file_index: int, chunk: int) -> str:
    return f"{file_index:05d}-{chunk:05d}"

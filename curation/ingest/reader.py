"""Pick the reader for an input file and cut its documents into work units."""

from __future__ import annotations

from collections.abc import Iterator

from curation.document import Document
from curation.ingest.curated import read_curated
from curation.ingest.files import detect_format
from curation.ingest.llava import read_llava
from curation.ingest.mmc4 import read_mmc4
from curation.ingest.pairs import read_pairs
from curation.ingest.quarantine import QuarantineRecord
from curation.pipeline_config import IngestConfig


def read_input(
    path: str, cfg: IngestConfig, storage_options: dict | None = None
) -> Iterator[Document | QuarantineRecord]:
    kind = detect_format(path)
    if kind == "shards":  # a curate output read again (curated shards keep everything)
        yield from read_curated(path, storage_options)
        return
    if cfg.format == "llava":  # LLaVA SFT JSON / JSONL (issue 14)
        if kind != "jsonl":
            raise ValueError(f"{path}: format llava expects JSON or JSONL input")
        yield from read_llava(path, cfg.image_root, storage_options, cfg.max_line_bytes)
        return
    if kind == "jsonl":
        if cfg.format in ("coyo", "laion"):
            raise ValueError(f"{path}: format {cfg.format} expects Parquet input")
        yield from read_mmc4(path, storage_options, cfg.max_line_bytes)
    else:
        yield from read_pairs(path, cfg.format, cfg.url_column, cfg.caption_column,
                              storage_options)

"""COYO / LAION / img2dataset-style Parquet pairs -> one-image, one-text Documents.

Every column is carried into ``metadata`` (COYO's clip scores, phash, sizes, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq

from curation.document import Document, ImageRecord, Provenance, make_doc_id
from curation.ingest.files import open_binary
from curation.ingest.quarantine import QuarantineRecord

URL_COLUMNS = ("url", "URL", "image_url", "raw_url")
CAPTION_COLUMNS = ("text", "TEXT", "caption", "txt", "alt", "CAPTION")
COYO_MARKERS = {"clip_similarity_vitb32", "clip_similarity_vitl14", "image_phash"}


def _clean(value: Any) -> Any:
    """JSON-safe metadata: NaN/inf become None, bytes become hex."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    if wanted:
        return wanted if wanted in columns else None
    return next((c for c in candidates if c in columns), None)


def read_pairs(
    path: str,
    fmt: str = "auto",
    url_column: str | None = None,
    caption_column: str | None = None,
    storage_options: dict | None = None,
) -> Iterator[Document | QuarantineRecord]:
    with open_binary(path, storage_options) as f:
        try:
            pf = pq.ParquetFile(f)
        except Exception as exc:  # noqa: BLE001 - any parse failure quarantines the file
            yield QuarantineRecord(path, "unreadable_parquet", str(exc))
            return
        columns = pf.schema_arrow.names
        url_col = _pick(columns, url_column, URL_COLUMNS)
        cap_col = _pick(columns, caption_column, CAPTION_COLUMNS)
        missing = [n for n, c in (("url", url_col), ("caption", cap_col)) if c is None]
        if missing:
            yield QuarantineRecord(path, f"missing_column:{missing[0]}",
                                   f"columns present: {columns}; set url_column/"
                                   "caption_column in the pipeline's ingest section")
            return
        source = fmt if fmt in ("coyo", "laion") else (
            "coyo" if COYO_MARKERS & set(columns) else "laion")
        row = -1
        for batch in pf.iter_batches(batch_size=4096):
            for rec in batch.to_pylist():
                row += 1
                url, caption = rec.get(url_col), rec.get(cap_col)
                if not isinstance(url, str) or not url:
                    yield QuarantineRecord(path, "missing_field:url", "empty url", row=row)
                    continue
                if caption is not None and not isinstance(caption, str):
                    yield QuarantineRecord(path, "wrong_type", f"{cap_col} is not text",
                                           row=row)
                    continue
                meta = {k: _clean(v) for k, v in rec.items() if k not in (url_col, cap_col)}
                yield Document(
                    doc_id=make_doc_id(source, url, caption),
                    source=source,
                    url=None,
                    texts=[caption or ""],
                    images=[ImageRecord(url=url, matched_text_index=0)],
                    provenance=Provenance(file=path, row=row),
                    metadata=meta,
                )

"""MMC4-style JSONL documents -> Documents (plain, .gz or .zip; local or s3://).

Each line is validated; a bad line is quarantined with file, line and reason and the
run goes on. Unknown fields land in ``metadata`` so a document round-trips.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import IO, Any

from curation.document import Document, ImageRecord, Provenance, make_doc_id
from curation.ingest.files import iter_jsonl_streams
from curation.ingest.quarantine import QuarantineRecord, excerpt_of

MAX_IMAGES_PER_DOC = 1000  # far above MMC4's max (~15 in core); more is garbage
MAX_TEXTS_PER_DOC = 100_000
_IMAGE_FIELDS = {"raw_url", "matched_text_index", "matched_sim"}


class BadRecord(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BadRecord("duplicate_key", f"key {key!r} appears twice")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> float:
    raise BadRecord("non_finite_number", f"{name} is not a valid number")


def _finite(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRecord("wrong_type", f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise BadRecord("non_finite_number", f"{what} is {value}")
    return float(value)


def _parse_image(info: Any, i: int, n_texts: int) -> ImageRecord:
    if not isinstance(info, dict):
        raise BadRecord("wrong_type", f"image_info[{i}] must be an object")
    url = info.get("raw_url") or info.get("url")
    if not isinstance(url, str) or not url:
        raise BadRecord("missing_field:raw_url", f"image_info[{i}] has no raw_url")
    idx = info.get("matched_text_index")
    if idx is not None:
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise BadRecord("wrong_type", f"image_info[{i}].matched_text_index must be int")
        if not 0 <= idx < n_texts:
            raise BadRecord(
                "bad_text_index",
                f"image_info[{i}].matched_text_index={idx} but the document has "
                f"{n_texts} texts",
            )
    sim = _finite(info.get("matched_sim"), f"image_info[{i}].matched_sim")
    extra = {k: v for k, v in info.items() if k not in _IMAGE_FIELDS and k != "url"}
    return ImageRecord(url=url, matched_text_index=idx, matched_sim=sim, metadata=extra)


def parse_mmc4_record(obj: Any, provenance: Provenance) -> Document:
    """Validate one decoded MMC4 object; raises BadRecord with a reason code."""
    if not isinstance(obj, dict):
        raise BadRecord("wrong_type", f"a document must be an object, got {type(obj).__name__}")
    texts = obj.get("text_list")
    if texts is None:
        raise BadRecord("missing_field:text_list", "no text_list")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BadRecord("wrong_type", "text_list must be a list of strings")
    infos = obj.get("image_info", [])
    if infos is None:
        infos = []
    if not isinstance(infos, list):
        raise BadRecord("wrong_type", "image_info must be a list")
    if len(infos) > MAX_IMAGES_PER_DOC:
        raise BadRecord("too_many_images", f"{len(infos)} images (limit {MAX_IMAGES_PER_DOC})")
    if len(texts) > MAX_TEXTS_PER_DOC:
        raise BadRecord("too_many_texts", f"{len(texts)} texts (limit {MAX_TEXTS_PER_DOC})")
    if not any(t.strip() for t in texts) and not infos:
        raise BadRecord("empty_document", "no text and no images")
    images = [_parse_image(info, i, len(texts)) for i, info in enumerate(infos)]
    sim = obj.get("similarity_matrix")
    if sim is not None:
        if not isinstance(sim, list) or not all(isinstance(r, list) for r in sim):
            raise BadRecord("wrong_type", "similarity_matrix must be a list of lists")
        sim = [[_finite(v, "similarity_matrix") for v in row] for row in sim]
    url = obj.get("url") if isinstance(obj.get("url"), str) else None
    metadata = {
        k: v for k, v in obj.items()
        if k not in {"text_list", "image_info", "similarity_matrix", "url"}
    }
    return Document(
        doc_id=make_doc_id("mmc4", url or provenance.location()),
        source="mmc4",
        url=url,
        texts=texts,
        images=images,
        provenance=provenance,
        metadata=metadata,
        similarity_matrix=sim,
    )


def iter_lines(stream: IO[bytes], max_line_bytes: int) -> Iterator[tuple[int, bytes, bool]]:
    """(1-based line number, bytes, too_long) without holding an over-long line."""
    lineno = 0
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        lineno += 1
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            head = chunk[:200]
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of the line
                chunk = stream.readline(max_line_bytes)
            yield lineno, head, True
        else:
            yield lineno, chunk, False


def read_mmc4(
    path: str, storage_options: dict | None = None, max_line_bytes: int = 8 * 1024 * 1024
) -> Iterator[Document | QuarantineRecord]:
    for name, stream in iter_jsonl_streams(path, storage_options):
        for lineno, raw, too_long in iter_lines(stream, max_line_bytes):
            if too_long:
                yield QuarantineRecord(name, "line_too_long", f"line over {max_line_bytes} "
                                       "bytes", line=lineno, excerpt=excerpt_of(raw))
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield QuarantineRecord(name, "not_utf8", str(exc), line=lineno,
                                       excerpt=excerpt_of(raw))
                continue
            try:
                obj = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                                 parse_constant=_reject_constant)
                yield parse_mmc4_record(obj, Provenance(file=name, line=lineno))
            except BadRecord as exc:
                yield QuarantineRecord(name, exc.reason, str(exc), line=lineno,
                                       excerpt=excerpt_of(raw))
            except (json.JSONDecodeError, RecursionError) as exc:
                yield QuarantineRecord(name, "malformed_json", str(exc), line=lineno,
                                       excerpt=excerpt_of(raw))

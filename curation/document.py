"""The one record type that crosses every stage border: an interleaved document.

A COYO/LAION pair is a document with one text and one image. Unknown input fields
live in ``metadata`` so an MMC4 document round-trips without loss. Decisions carry
their reason: a stage that drops a document sets ``drop_reason`` (and the stage
name); a stage that drops an image sets that image's ``status`` to a reason code.
Dropped records keep flowing to the writer so that stats are sums of reasons.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

IMAGE_PENDING = "pending"
IMAGE_OK = "ok"


@dataclass
class ImageRecord:
    """One image slot of a document, in document order."""

    url: str
    matched_text_index: int | None = None
    matched_sim: float | None = None
    status: str = IMAGE_PENDING  # "pending", "ok", or a reason code such as "http_404"
    dropped_by: str | None = None  # stage that set a non-ok status
    sha256: str | None = None
    phash: str | None = None
    width: int | None = None  # after resize / re-encode (what is stored)
    height: int | None = None
    original_width: int | None = None
    original_height: int | None = None
    mime: str | None = None  # e.g. "image/jpeg"; decides the shard member extension
    num_bytes: int | None = None
    similarities: list[float] | None = None  # CLIP cosine to each text, in text order
    member: str | None = None  # shard member suffix ("0.jpg") set by the writer
    metadata: dict[str, Any] = field(default_factory=dict)
    data: bytes | None = field(default=None, repr=False)  # payload, never in JSON

    @property
    def kept(self) -> bool:
        return self.status == IMAGE_OK

    def drop(self, reason: str, stage: str) -> None:
        """Mark this image dropped with a reason code; its bytes are released."""
        self.status = reason
        self.dropped_by = stage
        self.data = None

    def to_dict(self) -> dict[str, Any]:
        # every document's images pass through here at each stage border: copying the
        # instance dict is ~10x a per-field getattr
        out = self.__dict__.copy()
        out.pop("data", None)
        if len(out) != len(_IMAGE_FIELDS):  # an attribute set from outside: fields only
            return {name: getattr(self, name) for name in _IMAGE_FIELDS}
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ImageRecord:
        if raw.keys() <= _IMAGE_FIELD_SET:
            return cls(**raw)
        kwargs = {k: v for k, v in raw.items() if k in _IMAGE_FIELD_SET}
        extra = {k: v for k, v in raw.items() if k not in _IMAGE_FIELD_SET}
        rec = cls(**kwargs)
        rec.metadata = {**extra, **rec.metadata}
        return rec


_IMAGE_FIELDS = tuple(f.name for f in fields(ImageRecord) if f.name != "data")
_IMAGE_FIELD_SET = frozenset(_IMAGE_FIELDS)


@dataclass
class Provenance:
    """Where a record came from: input file and 1-based line (JSONL) or 0-based row."""

    file: str
    line: int | None = None
    row: int | None = None

    def location(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.row is not None:
            return f"{self.file}#row={self.row}"
        return self.file


@dataclass
class Document:
    """An interleaved image-text document (or a one-image, one-text pair)."""

    doc_id: str
    source: str  # "mmc4", "coyo", "laion", ...
    url: str | None
    texts: list[str]
    images: list[ImageRecord]
    provenance: Provenance
    metadata: dict[str, Any] = field(default_factory=dict)
    similarity_matrix: list[list[float]] | None = None  # images x texts, when scored
    drop_reason: str | None = None
    dropped_by: str | None = None

    @property
    def kept(self) -> bool:
        return self.drop_reason is None

    @property
    def kept_images(self) -> list[ImageRecord]:
        return [im for im in self.images if im.kept]

    def drop(self, reason: str, stage: str) -> None:
        """Drop the whole document; image payloads are released, metadata kept."""
        self.drop_reason = reason
        self.dropped_by = stage
        for im in self.images:
            im.data = None

    def to_dict(self, texts: bool = True) -> dict[str, Any]:
        """JSON-safe record (image bytes excluded; texts too with ``texts=False``)."""
        out = {
            "doc_id": self.doc_id,
            "source": self.source,
            "url": self.url,
            "images": [im.to_dict() for im in self.images],
            "provenance": {"file": self.provenance.file, "line": self.provenance.line,
                           "row": self.provenance.row},
            "metadata": self.metadata,
            "similarity_matrix": self.similarity_matrix,
            "drop_reason": self.drop_reason,
            "dropped_by": self.dropped_by,
        }
        if texts:
            out["texts"] = list(self.texts)
        return out

    @classmethod
    def from_json_bytes(cls, blob: bytes) -> Document:
        return cls.from_dict(json.loads(blob))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Document:
        return cls(
            doc_id=raw["doc_id"],
            source=raw["source"],
            url=raw.get("url"),
            # a list is copied; a codec's lazily unpacked sequence is kept as it is
            texts=list(raw["texts"]) if isinstance(raw["texts"], list) else raw["texts"],
            images=[ImageRecord.from_dict(im) for im in raw.get("images", [])],
            provenance=Provenance(**raw["provenance"]),
            metadata=dict(raw.get("metadata") or {}),
            similarity_matrix=raw.get("similarity_matrix"),
            drop_reason=raw.get("drop_reason"),
            dropped_by=raw.get("dropped_by"),
        )


def make_doc_id(source: str, *parts: str | None) -> str:
    """Deterministic id from the source name and identifying fields (url, or for a
    pair: image url + caption).

    16 hex chars of sha1: 64 bits, collision odds ~1e-7 at 2e9 documents. Two records
    with the same source and url share an id on purpose: that is an exact URL duplicate.
    """
    basis = "\x00".join([source, *(p or "" for p in parts)])
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()[:16]

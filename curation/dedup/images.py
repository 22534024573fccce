"""Duplicate images: within a document (MMC4 rule) and across the corpus (MMC4/OBELICS).

Exact identity is the sha256 of the downloaded bytes; perceptual identity is a 64-bit
pHash (imagehash, DCT of a 32x32 grey image) compared by Hamming distance. A resized
or re-encoded copy of an image typically lands within 0-4 bits; different photos
are ~32 bits apart.
"""

from __future__ import annotations

import hashlib
import io

import imagehash
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from curation.document import IMAGE_PENDING, Document, ImageRecord
from curation.stage import (
    FACT_ID,
    FACT_UNIT,
    Decision,
    GlobalStage,
    Stage,
    StageConfig,
    UnitDecision,
)


def phash_hex(data: bytes) -> str | None:
    """16-hex-digit pHash of encoded image bytes; None when they do not decode."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return str(imagehash.phash(img.convert("RGB")))
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def fill_hashes(im: ImageRecord) -> None:
    """Set sha256/phash from the payload where a downloader did not."""
    if im.data is None:
        return
    if im.sha256 is None:
        im.sha256 = hashlib.sha256(im.data).hexdigest()
    if im.phash is None:
        im.phash = phash_hex(im.data)


class ImageDedupConfig(StageConfig):
    max_hamming: int = Field(default=4, ge=0, le=64,
                             description="pHash bits within which two images are one")


class ImageDedupStage(Stage):
    """Keep the first of near-identical images inside each document (MMC4 paper:
    perceptual-hash duplicates within a document removed)."""

    name = "image_dedup"
    Config = ImageDedupConfig
    removes_images = True

    def process_kept(self, docs: list[Document]) -> None:
        for doc in docs:
            self.dedup_document(doc)

    def dedup_document(self, doc: Document) -> None:
        seen_sha: set[str] = set()
        seen_phash: list[str] = []
        for im in doc.kept_images:
            fill_hashes(im)
            near = im.phash is not None and any(
                hamming(im.phash, p) <= self.config.max_hamming for p in seen_phash)
            if (im.sha256 is not None and im.sha256 in seen_sha) or near:
                im.drop("duplicate_in_document", self.name)
                continue
            if im.sha256 is not None:
                seen_sha.add(im.sha256)
            if im.phash is not None:
                seen_phash.append(im.phash)


class ImageFrequencyConfig(StageConfig):
    max_documents: int = Field(default=10, ge=1, description="MMC4 and OBELICS use 10")
    keys: list[str] = Field(default=["sha256", "phash", "url"],
                            description="identities counted: sha256, phash, url")


def _image_keys(im: ImageRecord, keys: list[str]) -> list[str]:
    """The image's identities; a hash the downloader left unset (pHash) is computed
    from the payload here, so ``keys: [phash]`` works without image_dedup before."""
    if im.data is not None:
        if "sha256" in keys and im.sha256 is None:
            im.sha256 = hashlib.sha256(im.data).hexdigest()
        if "phash" in keys and im.phash is None:
            im.phash = phash_hex(im.data)
    return [f"{k}:{getattr(im, k)}" for k in keys if getattr(im, k, None)]


class ImageFrequencyStage(GlobalStage):
    """Drop images that appear in more than ``max_documents`` documents (logos,
    icons, banners): counted once per document, by any of the configured identities.

    Facts are one row per (document, live image, identity); the fit counts distinct
    documents per identity and names the (document, image) slots to drop."""

    name = "image_frequency"
    Config = ImageFrequencyConfig
    config: ImageFrequencyConfig
    removes_images = True
    removes_images_only = True
    fact_schema = pa.schema([("image", pa.int32()), ("key", pa.string())])
    decision_schema = pa.schema([("image", pa.int32())])
    _LIVE = {IMAGE_PENDING, "ok"}

    def collect(self, docs: list[Document]) -> list[tuple[int, dict]]:
        out = []
        for i, doc in enumerate(docs):
            if not doc.kept:
                continue
            for j, im in enumerate(doc.images):
                if im.status in self._LIVE:
                    out.extend((i, {"image": j, "key": k})
                               for k in _image_keys(im, self.config.keys))
        return out

    def fit(self, facts: pa.Table) -> Decision:
        limit = self.config.max_documents
        docs_per_key = facts.group_by("key").aggregate([(FACT_ID, "count_distinct")])
        frequent = docs_per_key.filter(
            pc.greater(docs_per_key[f"{FACT_ID}_count_distinct"], limit))["key"]
        hit = facts.filter(pc.is_in(facts["key"], value_set=frequent))
        rows = hit.group_by([FACT_ID, FACT_UNIT, "image"]).aggregate([])
        rows = rows.select([FACT_ID, FACT_UNIT, "image"]).sort_by(
            [(FACT_ID, "ascending"), ("image", "ascending")])
        return Decision({"max_documents": limit, "frequent_keys": len(frequent),
                         "images": rows.num_rows}, rows)

    def apply(self, docs: list[Document], decision: UnitDecision) -> list[Document]:
        for i, rows in decision.rows.items():
            doc = docs[i]
            if not doc.kept:
                continue
            for row in rows:
                im = doc.images[int(row["image"])]
                if im.status in self._LIVE:
                    im.drop("too_frequent", self.name)
        return docs

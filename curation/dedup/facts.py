"""Small per-document facts for dedup, and their columnar form.

A fact is what ``fit`` needs to decide, never the document itself: ids, a URL hash,
an exact-text hash, the MinHash signature (num_perm uint32 as bytes), and the two
numbers the kept-document rule uses. ~600 bytes per document at 128 permutations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curation.dedup.minhash import EMPTY, MinHasher
from curation.dedup.normalize import document_text, fold_texts, url_hash
from curation.dedup.params import DedupConfig
from curation.dedup.shingles import shingles_of_words, texts_hashes, word_hashes
from curation.document import IMAGE_PENDING, Document

_LIVE_IMAGE = {IMAGE_PENDING, "ok"}
FACT_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("location", pa.string()), ("url_hash", pa.int64()),
    ("text_hash", pa.int64()), ("signature", pa.binary()), ("num_images", pa.int64()),
    ("text_len", pa.int64()), ("shingles", pa.binary()),
])


def _identity_url(doc: Document, is_pair: bool) -> str | None:
    if doc.url:
        return doc.url
    if is_pair and len(doc.images) == 1:
        return doc.images[0].url  # a COYO/LAION pair is identified by its image
    return None


def fact_columns(docs: list[Document], cfg: DedupConfig) -> dict[str, list]:
    """Facts of the kept documents of a batch as columns (``FACT_SCHEMA`` names),
    signatures vectorized over the batch."""
    docs = [d for d in docs if d.kept]
    is_pair = [d.source in cfg.pair_sources for d in docs]
    buf, ends = fold_texts(["" if pair else document_text(d.texts)
                            for d, pair in zip(docs, is_pair)])
    words, word_offsets = word_hashes(buf, ends)
    has_text = np.diff(word_offsets) > 0
    n = len(docs)
    cols: dict[str, list] = {
        "doc_id": [d.doc_id for d in docs],
        "location": [d.provenance.location() for d in docs],
        "url_hash": [url_hash(_identity_url(d, p)) for d, p in zip(docs, is_pair)]
        if cfg.url else [None] * n,
        "text_hash": [None] * n, "signature": [None] * n,
        "num_images": [sum(1 for im in d.images if im.status in _LIVE_IMAGE) for d in docs],
        "text_len": [sum(map(len, d.texts)) for d in docs],
        "shingles": [None] * n,
    }
    present = np.flatnonzero(has_text).tolist()
    if cfg.exact:
        keys = texts_hashes(words, word_offsets).view(np.int64)
        for i in present:
            cols["text_hash"][i] = int(keys[i])
    if cfg.minhash:
        hashes, offsets = shingles_of_words(words, word_offsets, cfg.ngram)
        sigs = MinHasher(cfg.num_perm, cfg.seed).signatures(hashes, offsets)
        for i in present:
            cols["signature"][i] = sigs[i].tobytes()
            if cfg.verify_exact:
                # raw shingle hashes; deduplicated only for the few candidates verified
                cols["shingles"][i] = hashes[offsets[i]:offsets[i + 1]].tobytes()
    return cols


def compute_facts(docs: list[Document], cfg: DedupConfig) -> list[dict]:
    """Facts for the kept documents of a batch, one dict per document."""
    cols = fact_columns(docs, cfg)
    return [dict(zip(cols, row)) for row in zip(*cols.values())]


def _optional_int(values, n: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.zeros(n, dtype=np.int64)
    mask = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v is not None and v == v:  # None or NaN (pandas) means absent
            arr[i], mask[i] = int(v), True
    return arr, mask


@dataclass
class FactTable:
    """Facts as parallel arrays (dense row index = node id)."""

    rid: np.ndarray  # record id (input order); positions when the facts carry none
    doc_id: np.ndarray
    location: np.ndarray
    url_hash: np.ndarray
    has_url: np.ndarray
    text_hash: np.ndarray
    has_text: np.ndarray
    sig: np.ndarray  # (n, num_perm) uint32, EMPTY rows where has_sig is False
    has_sig: np.ndarray
    num_images: np.ndarray
    text_len: np.ndarray
    shingles: list[bytes | None]

    def __len__(self) -> int:
        return len(self.doc_id)

    @classmethod
    def from_columns(cls, cols: dict, num_perm: int) -> FactTable:
        """From a dict of columns (lists or numpy arrays, e.g. a Ray/pandas batch)."""
        n = len(cols["doc_id"])
        url, has_url = _optional_int(cols["url_hash"], n)
        text, has_text = _optional_int(cols["text_hash"], n)
        sig = np.full((n, num_perm), EMPTY, dtype=np.uint32)
        has_sig = np.zeros(n, dtype=bool)
        for i, raw in enumerate(cols["signature"]):
            if isinstance(raw, (bytes, bytearray)) and raw:
                sig[i] = np.frombuffer(raw, dtype=np.uint32)
                has_sig[i] = True
        shingles = list(cols["shingles"]) if "shingles" in cols else [None] * n
        rid = np.asarray(cols["rid"], dtype=np.int64) if "rid" in cols else \
            np.arange(n, dtype=np.int64)
        return cls(rid, np.asarray(cols["doc_id"], dtype=str),
                   np.asarray(cols["location"], dtype=str),
                   url, has_url, text, has_text, sig, has_sig,
                   np.asarray(cols["num_images"], dtype=np.int64),
                   np.asarray(cols["text_len"], dtype=np.int64), shingles)

    @classmethod
    def from_records(cls, facts: list[dict], num_perm: int) -> FactTable:
        keys = ("doc_id", "location", "url_hash", "text_hash", "signature",
                "num_images", "text_len")
        cols = {k: [f.get(k) for f in facts] for k in keys}
        cols["shingles"] = [f.get("shingles") for f in facts]
        return cls.from_columns(cols, num_perm)

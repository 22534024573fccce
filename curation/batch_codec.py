"""Serialize a batch of documents (with image bytes) into one binary blob.

Used for rows moving between Ray operations and for the run's staging files. The
format is a 4-byte header length, a JSON header (records + blob offsets), then the
image bytes back to back. No pickle: a staged file can be read safely by anyone.
"""

from __future__ import annotations

import json
import struct

from curation.document import Document

_MAGIC = b"CDB1"


def encode_docs(docs: list[Document]) -> bytes:
    records = []
    blobs: list[bytes] = []
    offset = 0
    for doc in docs:
        rec = doc.to_dict()
        for im_rec, im in zip(rec["images"], doc.images):
            if im.data is not None:
                im_rec["_blob"] = [offset, len(im.data)]
                blobs.append(im.data)
                offset += len(im.data)
        records.append(rec)
    header = json.dumps(records, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return b"".join([_MAGIC, struct.pack("<Q", len(header)), header, *blobs])


def decode_docs(payload: bytes) -> list[Document]:
    if payload[:4] != _MAGIC:
        raise ValueError("not a curation document batch (bad magic)")
    (hlen,) = struct.unpack("<Q", payload[4:12])
    start = 12 + hlen
    records = json.loads(payload[12:start].decode("utf-8"))
    docs = []
    view = memoryview(payload)
    for rec in records:
        blob_refs = [im.pop("_blob", None) for im in rec["images"]]
        doc = Document.from_dict(rec)
        for im, ref in zip(doc.images, blob_refs):
            if ref is not None:
                off, n = ref
                im.data = bytes(view[start + off : start + off + n])
        docs.append(doc)
    return docs

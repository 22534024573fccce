"""The between-stage document codec: exact round trips, lazy texts, old formats."""

from __future__ import annotations

import json
import struct

import pytest

from curation.batch_codec import LazyTexts, decode_docs, encode_docs
from curation.document import Document, ImageRecord, Provenance


def docs(n: int = 5) -> list[Document]:
    out = []
    for i in range(n):
        images = [ImageRecord(f"http://h/{i}/{j}.jpg", matched_text_index=j,
                              status="ok" if j == 0 else "pending",
                              data=bytes([i, j]) * 50 if j == 0 else None)
                  for j in range(2)]
        out.append(Document(f"d{i}", "mmc4", f"http://s/{i}", [f"s{i}.{k} é" for k in range(3)],
                            images, Provenance("in.jsonl", i + 1), metadata={"q": i / 3}))
    return out


def texts_section(blob: bytes) -> bytes:
    (hlen,) = struct.unpack("<Q", blob[4:12])
    return blob[12 + hlen:]


def test_round_trip_is_exact_with_image_bytes():
    original = docs()
    back = decode_docs(encode_docs(original))
    assert [d.to_dict() for d in back] == [d.to_dict() for d in original]
    assert [im.data for d in back for im in d.images] == \
        [im.data for d in original for im in d.images]


def test_image_fields_left_at_none_are_not_stored_and_come_back():
    import msgpack

    full = ImageRecord("http://h/x.jpg", matched_text_index=1, matched_sim=0.25,
                       status="ok", dropped_by=None, sha256="ab" * 32, phash="0f" * 8,
                       width=3, height=4, original_width=6, original_height=8,
                       mime="image/jpeg", num_bytes=10, similarities=[0.1, 0.25],
                       member="0.jpg", metadata={"k": [1, None]}, data=b"xyz")
    bare = ImageRecord("", status="http_404", dropped_by="download")
    original = [Document("d", "mmc4", None, ["t"], [full, bare], Provenance("f", 1))]
    blob = encode_docs(original)
    (hlen,) = struct.unpack("<Q", blob[4:12])
    header = msgpack.unpackb(blob[12:12 + hlen], raw=False)
    assert set(header[0]["images"][1]) == {"url", "status", "dropped_by", "metadata"}
    assert "dropped_by" not in header[0]["images"][0]
    back = decode_docs(blob)
    assert [d.to_dict() for d in back] == [d.to_dict() for d in original]
    assert back[0].images[0].data == b"xyz" and back[0].images[1].data is None


def test_untouched_texts_stay_packed_and_pass_through():
    blob = encode_docs(docs())
    back = decode_docs(blob)
    assert all(isinstance(d.texts, LazyTexts) and not d.texts.loaded for d in back)
    back[2].drop("too_short", "f")  # a decision, no text read
    again = encode_docs(back)
    assert not any(d.texts.loaded for d in back)
    assert texts_section(again) == texts_section(blob)  # passed through, not repacked
    final = decode_docs(again)
    assert final[2].drop_reason == "too_short"
    assert list(final[4].texts) == ["s4.0 é", "s4.1 é", "s4.2 é"] and len(final[4].texts) == 3


def test_reading_one_text_then_reordering_repacks():
    back = decode_docs(encode_docs(docs()))
    assert back[1].texts[0] == "s1.0 é"
    swapped = decode_docs(encode_docs([back[1], back[0]]))
    assert [d.doc_id for d in swapped] == ["d1", "d0"]
    assert swapped[1].texts[2] == "s0.2 é"


def test_first_version_json_batches_are_still_read():
    records = [d.to_dict() for d in docs(2)]
    records[0]["images"][0]["_blob"] = [0, 3]
    header = json.dumps(records).encode()
    old = b"CDB1" + struct.pack("<Q", len(header)) + header + b"abc"
    back = decode_docs(old)
    assert back[0].images[0].data == b"abc" and back[1].texts == records[1]["texts"]
    with pytest.raises(ValueError, match="bad magic"):
        decode_docs(b"XXXX")

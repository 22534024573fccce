"""Image dedup: within a document by sha256/pHash, across the corpus by frequency."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from curation.decisions import run_global_local
from curation.dedup.images import (
    ImageDedupStage,
    ImageFrequencyStage,
    hamming,
    phash_hex,
)
from curation.document import IMAGE_OK, Document, ImageRecord, Provenance
from tests.conftest import DATA


def _bytes(name, size=None, quality=90):
    img = Image.open(DATA / "dedup" / name).convert("RGB")
    if size:
        img = img.resize(size)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _image(data, url):
    return ImageRecord(url=url, status=IMAGE_OK, data=data)


def _doc(doc_id, images):
    return Document(doc_id, "mmc4", f"http://d/{doc_id}", ["t"], images, Provenance("f", 1))


def test_phash_is_stable_under_resize_and_far_between_photos():
    cat, cat_small = _bytes("chelsea.jpg"), _bytes("chelsea.jpg", (120, 80), quality=60)
    coffee = _bytes("coffee.jpg")
    assert hamming(phash_hex(cat), phash_hex(cat_small)) <= 4
    assert hamming(phash_hex(cat), phash_hex(coffee)) > 16
    assert phash_hex(b"not an image") is None


def test_within_document_keeps_first_of_each_image():
    cat = _bytes("chelsea.jpg")
    doc = _doc("d", [_image(cat, "u0"), _image(_bytes("coffee.jpg"), "u1"),
                     _image(cat, "u2"), _image(_bytes("chelsea.jpg", (128, 85)), "u3"),
                     _image(b"broken", "u4")])
    other = _doc("o", [_image(cat, "v0")])
    ImageDedupStage().process([doc, other])
    assert [im.status for im in doc.images] == [
        "ok", "ok", "duplicate_in_document", "duplicate_in_document", "ok"]
    assert doc.images[2].dropped_by == "image_dedup" and doc.images[2].data is None
    assert doc.images[0].sha256 and len(doc.images[0].phash) == 16
    assert other.images[0].kept  # other documents are not affected


def test_images_in_too_many_documents_are_dropped():
    stage = ImageFrequencyStage(ImageFrequencyStage.Config(max_documents=3))
    docs = [_doc(f"d{i}", [ImageRecord(url="http://cdn/logo.png"),
                           ImageRecord(url=f"http://cdn/photo{i}.jpg")]) for i in range(4)]
    docs.append(_doc("x", [ImageRecord(url="http://cdn/logo.png")] * 2))  # once per doc
    rare = [_doc(f"r{i}", [ImageRecord(url="http://cdn/rare.png")]) for i in range(3)]
    out, decision = run_global_local(stage, docs + rare)
    assert decision.summary == {"max_documents": 3, "frequent_keys": 1, "images": 6}
    assert all(d.images[0].status == "too_frequent" for d in out[:5])
    assert out[4].images[1].status == "too_frequent"
    assert all(d.images[1].status == "pending" for d in out[:4])
    assert all(d.images[0].status == "pending" for d in out[5:])


def test_frequency_by_sha256_and_by_phash():
    """Different URLs, same bytes (sha256) or the same photo re-encoded smaller (pHash):
    each identity counts the documents it appears in."""
    cat = _bytes("chelsea.jpg")
    small = [_bytes("chelsea.jpg", (160 + 8 * i, 107 + 5 * i), quality=70) for i in range(3)]
    coffee = _bytes("coffee.jpg")
    by_sha = [_doc(f"s{i}", [_image(cat, f"http://a/{i}.jpg"), _image(coffee, f"c{i}")])
              for i in range(3)]
    stage = ImageFrequencyStage(ImageFrequencyStage.Config(max_documents=2, keys=["sha256"]))
    out, decision = run_global_local(stage, by_sha)
    assert decision.summary["frequent_keys"] == 2  # cat and coffee bytes, 3 docs each
    assert all(im.status == "too_frequent" for d in out for im in d.images)
    resized = [_doc(f"p{i}", [_image(data, f"http://b/{i}.jpg")]) for i, data in
               enumerate(small)] + [_doc("q", [_image(coffee, "http://b/q.jpg")])]
    assert len({hashlib.sha256(d.images[0].data).hexdigest() for d in resized}) == 4
    for keys, dropped in ((["sha256"], []), (["phash"], ["p0", "p1", "p2"])):
        docs = [_doc(d.doc_id, [_image(d.images[0].data, d.images[0].url)])
                for d in resized]
        stage = ImageFrequencyStage(ImageFrequencyStage.Config(max_documents=2, keys=keys))
        out, _ = run_global_local(stage, docs)
        assert [d.doc_id for d in out if d.images[0].status == "too_frequent"] == dropped

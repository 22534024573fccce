"""Image filters: exact boundaries, recorded reasons, counts, re-assignment."""

from __future__ import annotations

import pytest

from curation.document import Document, ImageRecord, Provenance
from filters.image_aspect import ImageAspectConfig, ImageAspectFilter
from filters.image_similarity import ImageSimilarityConfig, ImageSimilarityFilter
from filters.image_size import ImageSizeConfig, ImageSizeFilter
from filters.url_words import UrlWordsFilter


def doc_with(*images: ImageRecord, texts=("a", "b")) -> Document:
    return Document("d", "mmc4", None, list(texts), list(images), Provenance("in", 3))


def sized(w: int, h: int, **kw) -> ImageRecord:
    return ImageRecord(f"http://h/{w}x{h}.jpg", status="ok", width=w, height=h, **kw)


def test_size_boundaries_and_unknown_size():
    doc = doc_with(sized(150, 150), sized(149, 500), sized(500, 149),
                   ImageRecord("http://h/pending.jpg"),
                   sized(100, 100, original_width=1000, original_height=1000))
    f = ImageSizeFilter()
    f.process([doc])
    assert [im.status for im in doc.images] == ["ok", "too_small", "too_small",
                                                "pending", "ok"]
    assert doc.images[1].dropped_by == "image_size"
    assert f.counts == {"kept": 3, "too_small": 2}
    big = doc_with(sized(20001, 300), sized(20000, 300))
    ImageSizeFilter(ImageSizeConfig(max_side=20000)).process([big])
    assert [im.status for im in big.images] == ["too_large", "ok"]


@pytest.mark.parametrize("w,h,ok", [(100, 200, True), (200, 100, True), (99, 200, False),
                                    (201, 100, False), (300, 300, True)])
def test_aspect_inclusive_bounds(w, h, ok):
    doc = doc_with(sized(w, h), sized(200, 200))
    ImageAspectFilter().process([doc])
    assert doc.images[0].status == ("ok" if ok else "bad_aspect_ratio")


def test_aspect_config_rejects_inverted_bounds():
    with pytest.raises(ValueError):
        ImageAspectConfig(min_ratio=3, max_ratio=2)


def test_url_words_before_download_and_document_left_empty():
    doc = doc_with(ImageRecord("http://h/img/Site-LOGO.png"),
                   ImageRecord("http://h/widgets/x.jpg"))
    keep = doc_with(ImageRecord("http://h/photo.jpg"), ImageRecord("http://h/icon.gif"))
    f = UrlWordsFilter()
    f.process([doc, keep])
    assert [im.status for im in doc.images] == ["url_word", "url_word"]
    assert (doc.drop_reason, doc.dropped_by) == ("no_images", "url_words")
    assert keep.kept and [im.status for im in keep.images] == ["pending", "url_word"]
    assert f.counts == {"url_word": 3, "kept": 1, "doc:no_images": 1}


def test_similarity_threshold_on_best_sentence_and_reassignment():
    a = ImageRecord("a", status="ok", similarities=[0.30, 0.28], matched_text_index=1,
                    matched_sim=0.28)
    b = ImageRecord("b", status="ok", similarities=[0.35, 0.10], matched_text_index=0,
                    matched_sim=0.35)
    c = ImageRecord("c", status="ok", similarities=[0.1499, 0.02])
    d = ImageRecord("d", status="ok", similarities=[0.15, 0.01])
    e = ImageRecord("e", status="ok")  # never scored
    doc = doc_with(a, b, c, d, e)
    f = ImageSimilarityFilter()
    f.process([doc])
    assert [im.status for im in doc.images] == ["ok", "ok", "low_similarity", "ok",
                                                "not_scored"]
    # after the drops the assignment is redone over a, b, d from stored similarities
    assert [a.matched_text_index, b.matched_text_index, d.matched_text_index] == [1, 0, 0]
    assert f.counts == {"kept": 3, "low_similarity": 1, "not_scored": 1}


def test_keep_text_only_and_no_reassign():
    im = ImageRecord("a", status="ok", similarities=[0.1], matched_text_index=0)
    doc = doc_with(im, texts=("x",))
    ImageSimilarityFilter(ImageSimilarityConfig(keep_text_only=True)).process([doc])
    assert doc.kept and im.status == "low_similarity"
    dropped = doc_with(ImageRecord("b", status="ok", matched_sim=0.5))
    dropped.drop("duplicate", "dedup")
    ImageSimilarityFilter().process([dropped])
    assert dropped.images[0].status == "ok"  # dropped documents are not touched

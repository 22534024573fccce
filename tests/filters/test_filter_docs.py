"""Document filters: mmc4-core counts and assignment strength, exact at the bounds."""

from __future__ import annotations

import pytest

from curation.document import Document, ImageRecord, Provenance
from filters.doc_assignment_strength import AssignmentStrengthFilter
from filters.doc_counts import DocCountsConfig, DocCountsFilter


def doc(n_images: int, n_texts: int, sims=None, status="ok") -> Document:
    sims = sims or [0.3] * n_images
    ims = [ImageRecord(f"u{i}", status=status, matched_sim=s) for i, s in
           zip(range(n_images), sims)]
    return Document("d", "mmc4", None, [f"s{j}" for j in range(n_texts)], ims,
                    Provenance("in", 1))


@pytest.mark.parametrize("n_images,n_texts,reason", [
    (2, 4, None), (15, 40, None), (1, 10, "too_few_images"), (16, 10, "too_many_images"),
    (3, 3, "too_few_sentences"), (3, 41, "too_many_sentences")])
def test_counts_mmc4_core_bounds(n_images, n_texts, reason):
    d = doc(n_images, n_texts)
    DocCountsFilter().process([d])
    assert d.drop_reason == reason
    assert d.dropped_by == ("doc_counts" if reason else None)


def test_counts_use_live_images_and_non_empty_sentences():
    d = doc(3, 4, status="pending")  # before download: pending images count
    d.images[0].drop("url_word", "url_words")
    d.texts[0] = "  "
    f = DocCountsFilter(DocCountsConfig(min_sentences=4))
    f.process([d])
    assert d.drop_reason == "too_few_sentences"
    assert f.counts == {"too_few_sentences": 1}
    assert DocCountsFilter(DocCountsConfig(max_images=None, max_sentences=None)) \
        .config.max_images is None
    with pytest.raises(ValueError):
        DocCountsConfig(min_images=5, max_images=4)


@pytest.mark.parametrize("sims,kept", [
    ([0.3, 0.3, 0.3, 0.1], True),        # 75% strong: kept (>= 75%)
    ([0.3, 0.3, 0.1], False),            # 66.7%
    ([0.3, 0.3, 0.3, 0.25], True),       # 0.25 itself is weak, share still 75%
    ([0.3, 0.3, 0.25, 0.25], False),     # 50%
    ([0.26], True)])
def test_assignment_strength(sims, kept):
    d = doc(len(sims), 5, sims)
    AssignmentStrengthFilter().process([d])
    assert d.kept is kept
    if not kept:
        assert (d.drop_reason, d.dropped_by) == ("weak_assignments",
                                                 "doc_assignment_strength")


def test_strength_ignores_dropped_images_and_counts_unscored_as_weak():
    d = doc(4, 5, [0.3, 0.3, 0.3, 0.0])
    d.images[3].drop("too_small", "image_size")
    d.images.append(ImageRecord("x", status="ok"))  # no score
    AssignmentStrengthFilter().process([d])
    assert d.kept  # 3 of 4 kept images strong
    empty = doc(0, 5)
    AssignmentStrengthFilter().process([empty])
    assert empty.drop_reason == "weak_assignments"

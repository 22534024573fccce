"""MMC4 assignment on the real published example and constructed matrices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curation.document import Document, ImageRecord, Provenance
from curation.scoring.assign import assign_document, mmc4_assign
from tests.conftest import DATA


def mmc4_example() -> dict:
    return json.loads((DATA / "mmc4_readme_example.jsonl").read_text().splitlines()[0])


def test_real_mmc4_example_reproduces_published_assignment():
    raw = mmc4_example()
    sim = np.array(raw["similarity_matrix"])
    index, sims = mmc4_assign(sim)
    assert index == [info["matched_text_index"] for info in raw["image_info"]] == [2, 1]
    assert sims == pytest.approx([info["matched_sim"] for info in raw["image_info"]],
                                 abs=1e-12)
    assert sim.argmax(axis=1).tolist() == [1, 1]  # the per-image argmax would differ


def test_surplus_images_go_to_their_best_sentence():
    sim = np.array([[0.30, 0.10], [0.29, 0.05], [0.28, 0.20], [0.01, 0.02]])
    index, sims = mmc4_assign(sim)
    # optimal 1:1 part: images 1->0, 2->1 would be 0.49; 0->0, 2->1 gives 0.50
    assert index == [0, 0, 1, 1]
    assert sims == pytest.approx([0.30, 0.29, 0.20, 0.02])


def test_each_sentence_gets_at_most_one_image_when_enough_sentences():
    rng = np.random.default_rng(0)
    sim = rng.uniform(0.1, 0.4, size=(5, 9))
    index, _ = mmc4_assign(sim)
    assert len(set(index)) == 5


def test_no_images_and_no_texts():
    assert mmc4_assign(np.zeros((0, 3))) == ([], [])
    with pytest.raises(ValueError, match="at least one text"):
        mmc4_assign(np.zeros((2, 0)))


def test_assign_document_skips_empty_texts_and_dropped_images():
    ims = [ImageRecord("u0", status="ok", similarities=[0.2, -1.0, 0.1]),
           ImageRecord("u1", status="ok", similarities=[0.3, -1.0, 0.05]),
           ImageRecord("u2", status="too_small", similarities=[0.9, -1.0, 0.9])]
    doc = Document("d", "mmc4", None, ["a", "  ", "b"], ims, Provenance("f", 1))
    assert assign_document(doc) == 2
    assert [im.matched_text_index for im in ims[:2]] == [2, 0]
    assert ims[2].matched_text_index is None
    # three images, one usable text column: all kept images go to it
    ims[2].status = "ok"
    doc.texts = ["a", "", ""]
    assign_document(doc)
    assert [im.matched_text_index for im in ims] == [0, 0, 0]

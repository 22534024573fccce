"""Global CLIP top-k: exact counts over the whole corpus, ties, thresholds."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from curation.decisions import facts_table, unit_decision, unit_rids
from curation.document import Document, ImageRecord, Provenance
from filters.clip_topk import ClipTopKConfig, ClipTopKStage, doc_score


def pair(i: int, sim: float | None, **meta) -> Document:
    im = ImageRecord(f"http://h/{i}.jpg", status="ok", matched_text_index=0,
                     matched_sim=sim)
    return Document(f"id{i:04d}", "coyo", None, [f"cap {i}"], [im],
                    Provenance("p.parquet", row=i), metadata=meta)


def run_global(stage: ClipTopKStage, units: list[list[Document]]) -> dict:
    """What the runner does: collect per unit, fit once on all facts, apply per unit
    with the summary passed through JSON."""
    names = [f"{u:05d}-00000" for u in range(len(units))]
    rids = [unit_rids(n, len(d)) for n, d in zip(names, units)]
    facts = pa.concat_tables([facts_table(stage, n, r, stage.collect(d))
                              for n, r, d in zip(names, rids, units)])
    summary = json.loads(json.dumps(stage.fit(facts).summary))
    for unit, r in zip(units, rids):
        stage.apply(unit, unit_decision(summary, None, r))
    return summary


def kept_ids(units) -> set[str]:
    return {d.doc_id for u in units for d in u if d.kept}


def test_fraction_is_global_not_per_shard():
    rng = np.random.default_rng(0)
    # unit 0 holds mostly strong pairs, unit 1 mostly weak ones
    units = [[pair(i, float(rng.uniform(0.25, 0.4))) for i in range(40)],
             [pair(100 + i, float(rng.uniform(0.1, 0.3))) for i in range(60)]]
    all_scores = sorted((d.images[0].matched_sim, d.doc_id) for u in units for d in u)
    stage = ClipTopKStage(ClipTopKConfig(fraction=0.3))
    decision = run_global(stage, units)
    assert decision["kept"] == 30 and decision["total"] == 100
    assert kept_ids(units) == {i for _, i in all_scores[-30:]}
    per_unit_0 = sum(d.kept for d in units[0])
    assert per_unit_0 != math.ceil(0.3 * 40)  # a per-shard cut would keep 12 here
    assert {d.drop_reason for u in units for d in u if not d.kept} == {"low_clip_score"}


def test_count_with_ties_keeps_exactly_k():
    sims = [0.3, 0.2, 0.2, 0.2, 0.2, 0.1]
    units = [[pair(i, s) for i, s in enumerate(sims[:3])],
             [pair(i, s) for i, s in enumerate(sims[3:], start=3)]]
    run_global(ClipTopKStage(ClipTopKConfig(count=3)), units)
    assert kept_ids(units) == {"id0000", "id0001", "id0002"}  # ties: input order


def test_same_doc_id_repeated_across_the_cut_keeps_exactly_k():
    """One document read three times, its copies tied at the cut: exactly k records
    pass (issue 13, item 2), the earlier copies in input order."""
    units = [[pair(0, 0.9), pair(1, 0.5)], [pair(1, 0.5), pair(1, 0.5), pair(2, 0.1)]]
    decision = run_global(ClipTopKStage(ClipTopKConfig(count=3)), units)
    assert decision["kept"] == 3
    assert [d.kept for u in units for d in u] == [True, True, True, False, False]


@pytest.mark.parametrize("count,expect", [(0, 0), (5, 5), (50, 5)])
def test_count_edges(count, expect):
    units = [[pair(i, 0.1 * i) for i in range(5)]]
    run_global(ClipTopKStage(ClipTopKConfig(count=count)), units)
    assert len(kept_ids(units)) == expect


def test_fixed_threshold_inclusive_and_unscored_dropped():
    units = [[pair(0, 0.28), pair(1, 0.2799), pair(2, None), pair(3, 0.5)]]
    stage = ClipTopKStage(ClipTopKConfig(threshold=0.28))
    run_global(stage, units)
    assert [d.drop_reason for d in units[0]] == [None, "low_clip_score", "not_scored",
                                                 None]


def test_metadata_score_field_and_interleaved_mean():
    units = [[pair(0, None, clip_similarity_vitl14=0.31),
              pair(1, None, clip_similarity_vitl14=0.29),
              pair(2, None, clip_similarity_vitl14=float("nan"))]]
    run_global(ClipTopKStage(ClipTopKConfig(count=1, score="clip_similarity_vitl14")),
               units)
    assert [d.drop_reason for d in units[0]] == [None, "low_clip_score", "not_scored"]
    doc = pair(9, 0.2)
    doc.images.append(ImageRecord("x", status="ok", matched_sim=0.4))
    doc.images.append(ImageRecord("y", status="too_small", matched_sim=0.9))
    assert doc_score(doc, "matched_sim") == pytest.approx(0.3)


def test_exactly_one_rule():
    with pytest.raises(ValueError, match="exactly one"):
        ClipTopKConfig(fraction=0.3, count=10)
    with pytest.raises(ValueError, match="exactly one"):
        ClipTopKConfig()

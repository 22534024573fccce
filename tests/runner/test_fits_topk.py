"""The distributed clip_topk fit finds the same cut as the in-process one: exact k in
(score desc, rid asc) order, with ties across the cut and repeated doc_ids."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from curation.decisions import unit_decision
from curation.stage import facts_schema
from filters.clip_topk import ClipTopKConfig, ClipTopKStage, below_cut


def _facts(stage, scores, rids, unit="00000-00000") -> pa.Table:
    return pa.table({"rid": pa.array(rids, pa.int64()), "unit": [unit] * len(rids),
                     "score": pa.array(scores, pa.float64())}, schema=facts_schema(stage))


def _dataset(table: pa.Table, rows_per_block: int):
    import ray

    return ray.data.from_arrow([table.slice(i, rows_per_block)
                                for i in range(0, table.num_rows, rows_per_block)])


def _kept(cut: dict, scores, rids) -> set[int]:
    return {r for s, r in zip(scores, rids) if below_cut(s, r, cut) is None}


@pytest.mark.parametrize("config", [{"count": 1}, {"count": 777}, {"fraction": 0.3},
                                    {"count": 0}, {"count": 5000}, {"threshold": 0.5}])
def test_cut_equals_in_process(ray_session, config):
    from curation.runner.fits.clip_topk import fit_clip_topk

    rng = np.random.default_rng(3)
    n = 3000
    scores = np.round(rng.uniform(-0.2, 0.6, n), 2)  # ~80 values: ties everywhere
    scores[:50] = -0.0  # negative zero ties with zero
    scores[50:100] = 0.0
    rids = rng.permutation(n * 5)[:n]  # unique, not in order
    stage = ClipTopKStage(ClipTopKConfig(**config))
    table = _facts(stage, scores, rids)
    expected = stage.fit(table).summary
    summary, rows = fit_clip_topk(stage, _dataset(table, 400), candidates=7)
    assert rows is None
    assert summary == expected
    if "threshold" not in config:
        k = config.get("count", math.ceil(config.get("fraction", 0) * n))
        order = sorted(zip(-scores, rids))[: min(k, n)]  # independent reference
        assert _kept(summary, scores, rids) == {int(r) for _, r in order}


def test_repeated_doc_ids_with_ties_keep_exactly_k(ray_session):
    """The same document read three times (its copies tie) straddles the cut: exactly k
    records pass, the first copies in input order (issue 13, item 2)."""
    from curation.runner.fits import fit_distributed

    stage = ClipTopKStage(ClipTopKConfig(count=4))
    # records (doc_id, score): a 0.9, b 0.5 x3 (same doc_id), c 0.5, d 0.1
    scores = [0.9, 0.5, 0.5, 0.5, 0.5, 0.1]
    doc_ids = ["a", "b", "b", "b", "c", "d"]
    rids = [10, 11, 12, (1 << 40) + 1, (1 << 40) + 2, (1 << 40) + 3]
    table = pa.concat_tables([_facts(stage, scores[:3], rids[:3], "00000-00000"),
                              _facts(stage, scores[3:], rids[3:], "00001-00000")])
    summary, _ = fit_distributed(stage, _dataset(table, 2))
    assert summary == {"mode": "cut", "threshold": 0.5, "tie_rid": (1 << 40) + 1,
                       "kept": 4, "total": 6}
    kept = _kept(summary, scores, rids)
    assert len(kept) == 4
    assert [doc_ids[rids.index(r)] for r in sorted(kept)] == ["a", "b", "b", "b"]
    decision = unit_decision(summary, None, rids)
    assert decision.summary["tie_rid"] == (1 << 40) + 1

"""The clip_topk fit on Ray Data: the exact k-th record without sorting the corpus.

Records are ordered by (score desc, rid asc); each is a 128-bit key whose ascending
order is that order (the score's float bits made monotone and inverted, then the
rid). A radix select fixes the key 8 bits at a time from distributed histograms
(256 counts per block), and once the records that share the fixed prefix are few
(``CANDIDATES``) they are brought to the driver and ranked exactly. The cut is the
same dict ``ClipTopKStage.fit`` returns.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curation.stage import FACT_ID
from filters.clip_topk import wanted_count

CANDIDATES = 1_000_000  # records ranked on the driver at the end (16 MB)
_SIGN = np.uint64(1 << 63)
_BITS = 8


def order_keys(scores: np.ndarray, rids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) uint64 with ascending (hi, lo) = (score desc, rid asc)."""
    bits = (np.asarray(scores, dtype=np.float64) + 0.0).view(np.uint64)  # -0.0 -> 0.0
    monotone = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return ~monotone, np.asarray(rids, dtype=np.int64).view(np.uint64) ^ _SIGN


def _keys(batch: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    return order_keys(batch.column("score").to_numpy(zero_copy_only=False),
                      batch.column(FACT_ID).to_numpy(zero_copy_only=False))


def _matching(hi: np.ndarray, lo: np.ndarray, fixed: int, prefix: tuple[int, int]
              ) -> np.ndarray:
    """Rows whose first ``fixed`` key bits equal the prefix's."""
    ok = np.ones(len(hi), dtype=bool)
    for word, want, n in ((hi, prefix[0], min(fixed, 64)), (lo, prefix[1], fixed - 64)):
        if n > 0:
            shift = np.uint64(64 - n)
            ok &= (word >> shift) == (np.uint64(want) >> shift)
    return ok


def _histogram(batch: pa.Table, fixed: int, prefix: tuple[int, int]) -> pa.Table:
    hi, lo = _keys(batch)
    ok = _matching(hi, lo, fixed, prefix)
    word = hi if fixed < 64 else lo
    shift = np.uint64(64 - (fixed % 64) - _BITS)
    digits = ((word[ok] >> shift) & np.uint64(255)).astype(np.int64)
    counts = np.bincount(digits, minlength=256)
    return pa.table({"counts": [counts.tobytes()]})


def _candidates(batch: pa.Table, fixed: int, prefix: tuple[int, int]) -> pa.Table:
    hi, lo = _keys(batch)
    return batch.select(["score", FACT_ID]).filter(pa.array(_matching(hi, lo, fixed, prefix)))


def _with_digit(prefix: tuple[int, int], fixed: int, digit: int) -> tuple[int, int]:
    hi, lo = prefix
    if fixed < 64:
        return hi | (digit << (64 - fixed - _BITS)), lo
    return hi, lo | (digit << (128 - fixed - _BITS))


def kth_record(facts, k: int, total: int, candidates: int = CANDIDATES) -> tuple[float, int]:
    """(score, rid) of the k-th record (1-based) in (score desc, rid asc) order."""
    fixed, prefix, rank, size = 0, (0, 0), k, total
    while size > candidates and fixed < 128:
        counts = np.zeros(256, dtype=np.int64)
        for batch in facts.map_batches(_histogram, batch_format="pyarrow", fn_kwargs={
                "fixed": fixed, "prefix": prefix}).iter_batches(batch_format="pyarrow"):
            for raw in batch.column("counts").to_pylist():
                counts += np.frombuffer(raw, dtype=np.int64)
        cumulative = np.cumsum(counts)
        digit = int(np.searchsorted(cumulative, rank))  # first bin reaching the rank
        rank -= int(cumulative[digit] - counts[digit])
        size = int(counts[digit])
        prefix = _with_digit(prefix, fixed, digit)
        fixed += _BITS
    found = facts.map_batches(_candidates, batch_format="pyarrow", fn_kwargs={
        "fixed": fixed, "prefix": prefix})
    scores, rids = [], []
    for batch in found.iter_batches(batch_format="pyarrow"):  # at most `candidates` rows
        scores.append(batch.column("score").to_numpy(zero_copy_only=False))
        rids.append(batch.column(FACT_ID).to_numpy(zero_copy_only=False))
    hi, lo = order_keys(np.concatenate(scores), np.concatenate(rids))
    pick = np.lexsort((lo, hi))[rank - 1]
    return float(np.concatenate(scores)[pick]), int(np.concatenate(rids)[pick])


def fit_clip_topk(stage, facts, candidates: int = CANDIDATES):
    """``ClipTopKStage.fit`` on a Ray dataset of facts: (the cut, no rows)."""
    cfg = stage.config
    facts = facts.select_columns([FACT_ID, "score"]).materialize()
    total = facts.count()
    if cfg.threshold is not None:
        return {"mode": "threshold", "threshold": cfg.threshold, "total": total}, None
    k = wanted_count(cfg, total)
    if k >= total:
        cut = {"mode": "all"}
    elif k == 0:
        cut = {"mode": "none"}
    else:
        score, rid = kth_record(facts, k, total, candidates)
        cut = {"mode": "cut", "threshold": score, "tie_rid": rid}
    return {**cut, "kept": min(k, total), "total": total}, None

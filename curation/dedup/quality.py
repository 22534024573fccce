"""Ground truth and expected quality of MinHash-LSH dedup at given parameters.

Exact Jaccard is computed on the same normalized word n-gram sets the signatures
use; ``predicted_detection`` simulates what the parameters promise for a pair of
Jaccard s (every signature slot agrees with probability s): it becomes an LSH
candidate (a band agrees) and its estimate reaches the threshold.
"""

from __future__ import annotations

import numpy as np

from curation.dedup.normalize import words
from curation.dedup.params import DedupConfig
from curation.dedup.shingles import shingle_tuples


def shingle_set(text: str, n: int) -> frozenset:
    return frozenset(shingle_tuples(words(text), n))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def predicted_detection(s: np.ndarray, cfg: DedupConfig, trials: int = 4000,
                        seed: int = 0) -> np.ndarray:
    """P(pair reported | Jaccard s) under independent signature slots."""
    rng = np.random.default_rng(seed)
    s = np.atleast_1d(np.asarray(s, dtype=float))
    out = np.empty(len(s))
    used = cfg.bands * cfg.rows
    for i, si in enumerate(s):
        agree = rng.random((trials, cfg.num_perm)) < si
        band_hit = agree[:, :used].reshape(trials, cfg.bands, cfg.rows).all(axis=2).any(axis=1)
        estimate_ok = agree.mean(axis=1) >= cfg.threshold
        out[i] = np.mean(band_hit & estimate_ok)
    return out


def precision_recall(found: set[tuple], truth: set[tuple]) -> tuple[float, float]:
    """Pair-level precision and recall (pairs as sorted tuples)."""
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    return precision, recall

"""Band keys and candidate pairs: vectorized grouping equals brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from curation.dedup.lsh import (
    band_keys,
    detection_probability,
    pairs_from_group,
    pairs_from_keys,
    unique_pairs,
)
from curation.dedup.params import DedupConfig


def _brute(keys, nodes):
    out = set()
    for (k1, n1), (k2, n2) in itertools.combinations(zip(keys, nodes), 2):
        if k1 == k2 and n1 != n2:
            out.add((min(n1, n2), max(n1, n2)))
    return out


def test_pairs_from_keys_equals_brute_force():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 40, 300).astype(np.uint64)
    nodes = rng.integers(0, 200, 300)
    u, v = pairs_from_keys(keys, nodes, max_all_pairs=1000)
    assert set(zip(u.tolist(), v.tolist())) == _brute(keys.tolist(), nodes.tolist())


def test_large_groups_become_stars_with_the_same_members():
    keys = np.array([7] * 100 + [8, 8], dtype=np.uint64)
    nodes = np.arange(102)[::-1].copy()
    u, v = pairs_from_keys(keys, nodes, max_all_pairs=10)
    pairs = set(zip(u.tolist(), v.tolist()))
    assert len(pairs) == 99 + 1
    assert {(2, n) for n in range(3, 102)} <= pairs and (0, 1) in pairs
    gu, gv = pairs_from_group(np.arange(5), max_all_pairs=3)
    assert gu.tolist() == [0] * 4 and gv.tolist() == [1, 2, 3, 4]


def test_band_keys_agree_exactly_when_the_band_agrees():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 2**32, 128, dtype=np.uint32)
    b = a.copy()
    b[3] ^= 1  # differs only in band 0 (rows 0-7)
    keys = band_keys(np.stack([a, b]), bands=16, rows=8)
    assert keys[0, 0] != keys[1, 0]
    assert (keys[0, 1:] == keys[1, 1:]).all()
    assert len(set(keys[0].tolist())) == 16  # band index is mixed in
    with pytest.raises(ValueError):
        band_keys(np.stack([a, b]), bands=17, rows=8)


def test_unique_pairs_orders_and_dedupes():
    u, v = unique_pairs(np.array([3, 1, 1, 2]), np.array([1, 3, 2, 1]))
    assert list(zip(u.tolist(), v.tolist())) == [(1, 2), (1, 3)]


def test_default_parameters_detect_pairs_at_the_threshold():
    cfg = DedupConfig()
    assert detection_probability(0.8, cfg.bands, cfg.rows) > 0.94
    assert detection_probability(0.85, cfg.bands, cfg.rows) > 0.99
    assert detection_probability(0.3, cfg.bands, cfg.rows) < 0.002
    with pytest.raises(ValueError):
        DedupConfig(num_perm=64, bands=16, rows=8)

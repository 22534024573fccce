"""LSH banding: band keys from signatures, and candidate pairs from equal keys.

Two documents become a candidate pair when all ``rows`` values of at least one of the
``bands`` bands agree; for Jaccard s that happens with probability
``1 - (1 - s**rows)**bands`` (``detection_probability``). Every function here works
on one group or one array, so the Ray job can call it per shuffled group.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
DEFAULT_MAX_ALL_PAIRS = 64  # larger groups emit a star (enough for components)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a bijection on uint64 with full avalanche."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def detection_probability(s: float | np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Chance that a pair with Jaccard ``s`` shares at least one band."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64 keys; the band index is mixed in, so keys of different
    bands never meet in one bucket."""
    if bands * rows > sigs.shape[1]:
        raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={sigs.shape[1]}")
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    for j in range(bands):
        acc = mix64(np.full(n, j + 1, dtype=np.uint64))
        for i in range(j * rows, (j + 1) * rows):
            acc = mix64(acc * _GOLDEN + sigs[:, i].astype(np.uint64))
        keys[:, j] = acc
    return keys


def pairs_from_group(nodes: np.ndarray, max_all_pairs: int = DEFAULT_MAX_ALL_PAIRS
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (u < v) among the members of one bucket: all pairs for a small
    group, a star from the smallest member for a large one (same components)."""
    nodes = np.unique(np.asarray(nodes, dtype=np.int64))
    if len(nodes) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(nodes) > max_all_pairs:
        return np.full(len(nodes) - 1, nodes[0]), nodes[1:]
    iu, iv = np.triu_indices(len(nodes), k=1)
    return nodes[iu], nodes[iv]


def pairs_from_keys(keys: np.ndarray, nodes: np.ndarray,
                    max_all_pairs: int = DEFAULT_MAX_ALL_PAIRS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """All candidate pairs among rows with equal key, vectorized by group size.

    ``keys`` and ``nodes`` are parallel 1-d arrays (one row per document per band);
    a node repeated within one key counts once.
    """
    order = np.lexsort((nodes, keys))
    k, n = keys[order], nodes[order]
    keep = np.ones(len(k), bool)
    keep[1:] = (k[1:] != k[:-1]) | (n[1:] != n[:-1])
    k, n = k[keep], n[keep]
    if len(k) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(k)])
    us, vs = [], []
    for size in np.unique(sizes[(sizes >= 2) & (sizes <= max_all_pairs)]):
        first = starts[sizes == size]
        members = n[first[:, None] + np.arange(size)]  # (groups, size), sorted rows
        iu, iv = np.triu_indices(size, k=1)
        us.append(members[:, iu].ravel())
        vs.append(members[:, iv].ravel())
    big = sizes > max(max_all_pairs, 1)
    if big.any():  # star from each large group's smallest node
        b_starts, b_sizes = starts[big], sizes[big]
        us.append(np.repeat(n[b_starts], b_sizes - 1))
        rest = np.repeat(b_starts + 1 - np.r_[0, np.cumsum(b_sizes - 1)[:-1]], b_sizes - 1)
        vs.append(n[rest + np.arange(int((b_sizes - 1).sum()))])
    if not us:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(us).astype(np.int64), np.concatenate(vs).astype(np.int64)


def unique_pairs(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (min, max) pairs, sorted."""
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    if len(lo) == 0:
        return lo.astype(np.int64), hi.astype(np.int64)
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0)
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)

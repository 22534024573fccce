"""Vectorized MinHash signatures, bit-identical to datasketch 2.0's "affine32" scheme.

datasketch is the reference: same permutation parameters (``RandomState(seed)``, odd
``a``), same MurmurHash3 pre-mix, same ``a*h + b mod 2^32``. Given the same 32-bit
input hashes, ``MinHasher.signatures`` equals ``datasketch.MinHash(...).hashvalues``
(tested), but computes a whole batch with a few numpy calls instead of one Python
call per shingle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's "no value" sentinel for affine32
_CHUNK_CELLS = 1 << 21  # permutations x shingles per numpy step (8 MB of uint32)


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 32-bit finalizer (datasketch pre-mixes input hashes with it)."""
    h = h.astype(np.uint32, copy=True)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def affine32_permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) datasketch.MinHash(num_perm, seed, scheme="affine32") draws."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


@dataclass
class MinHasher:
    """Signatures for many documents from their shingle hashes (see shingles.py)."""

    num_perm: int = 128
    seed: int = 1
    a: np.ndarray = field(init=False, repr=False)
    b: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.a, self.b = affine32_permutations(self.num_perm, self.seed)

    def signatures(self, hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(n_docs, num_perm) uint32; an empty document gets the all-EMPTY row."""
        n_docs = len(offsets) - 1
        out = np.full((n_docs, self.num_perm), EMPTY, dtype=np.uint32)
        counts = np.diff(offsets)
        mixed = fmix32(hashes)
        step = max(1, _CHUNK_CELLS // self.num_perm)
        # permutations x shingles, reused: a cache-sized buffer is ~20x faster than
        # one big (shingles x permutations) array (page faults, strided reduceat)
        buf = np.empty((self.num_perm, max(step, int(counts.max(initial=0)))), np.uint32)
        d0 = 0
        while d0 < n_docs:
            # the largest run of whole documents whose shingles fit one chunk
            d1 = int(np.searchsorted(offsets, offsets[d0] + step, side="right")) - 1
            d1 = min(max(d1, d0 + 1), n_docs)
            self._fill(out, buf, mixed, offsets, counts, d0, d1)
            d0 = d1
        return out

    def _fill(self, out: np.ndarray, buf: np.ndarray, mixed: np.ndarray,
              offsets: np.ndarray, counts: np.ndarray, d0: int, d1: int) -> None:
        lo, hi = int(offsets[d0]), int(offsets[d1])
        if hi == lo:
            return
        phv = buf[:, : hi - lo]
        np.multiply(self.a[:, None], mixed[None, lo:hi], out=phv)  # wraps mod 2^32
        phv += self.b[:, None]
        nonempty = np.nonzero(counts[d0:d1])[0]
        starts = offsets[d0:d1][nonempty] - lo
        out[d0 + nonempty] = np.minimum.reduceat(phv, starts, axis=1).T

    def signature_of(self, hashes: np.ndarray) -> np.ndarray:
        return self.signatures(hashes, np.array([0, len(hashes)], dtype=np.int64))[0]


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature slots, row by row (datasketch ``MinHash.jaccard``)."""
    return np.mean(np.atleast_2d(sig_a) == np.atleast_2d(sig_b), axis=1)

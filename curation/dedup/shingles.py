"""Word n-gram shingles as 32-bit hashes, vectorized over a batch of documents.

Each word is hashed once per batch (xxh32, cached in a dict), and an n-gram's hash is
a fixed linear combination of its word hashes mod 2^64, folded to 32 bits. That is a
plain function of the shingle, so datasketch given ``shingle_hash`` as its ``hashfunc``
produces bit-identical signatures (tests/dedup/test_dedup_minhash.py), while the
batch path needs no Python loop per shingle (datasketch's sha1 per shingle dominates
its run time, see shared/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import xxhash

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _coefficients(n: int) -> list[int]:
    """Odd, position-specific multipliers: the n-gram hash depends on word order."""
    return [_splitmix64(i + 1) | 1 for i in range(n)]


def token_hash(token: str | bytes) -> int:
    return xxhash.xxh32_intdigest(token if isinstance(token, bytes) else token.encode("utf-8"))


def shingle_hash(token_hashes: Sequence[int]) -> int:
    """Scalar reference of the batch path: the 32-bit hash of one n-gram given its
    word hashes (fewer than n for a short document)."""
    coef = _coefficients(len(token_hashes))
    acc = 0
    for h, c in zip(token_hashes, coef):
        acc = (acc + h * c) & _MASK64
    return (acc >> 32) ^ (acc & 0xFFFFFFFF)


def shingle_tuples(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of a token list as tuples (a short text is one shingle)."""
    if not tokens:
        return []
    if len(tokens) < n:
        return [tuple(tokens)]
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def batch_shingle_hashes(docs_tokens: list[list[str]] | list[list[bytes]],
                         n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of many documents at once.

    Returns ``(hashes uint32, offsets int64)``: document d's shingles are
    ``hashes[offsets[d]:offsets[d+1]]`` (empty for an empty document).
    """
    vocab = set().union(*docs_tokens)  # each distinct word is hashed once per batch
    table = {tok: token_hash(tok) for tok in vocab}
    lengths = np.fromiter(map(len, docs_tokens), dtype=np.int64, count=len(docs_tokens))
    flat = np.fromiter(map(table.__getitem__, chain.from_iterable(docs_tokens)),
                       dtype=np.uint64, count=int(lengths.sum()))
    # n-1 zeros after each document: no n-gram crosses a boundary
    starts = np.concatenate(([0], np.cumsum(lengths + n - 1)[:-1])).astype(np.int64)
    padded = np.zeros(int(lengths.sum()) + (n - 1) * (len(lengths) + 1), dtype=np.uint64)
    padded[np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
           + np.arange(len(flat))] = flat
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    positions = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
    acc = np.zeros(len(positions), dtype=np.uint64)
    for i, c in enumerate(_coefficients(n)):
        acc += padded[positions + i] * np.uint64(c)  # wraps mod 2^64 by design
    folded = (acc >> np.uint64(32)) ^ (acc & np.uint64(0xFFFFFFFF))
    return folded.astype(np.uint32), offsets

"""Word n-gram shingles as 32-bit hashes, vectorized over a batch of documents.

A batch arrives as normalized bytes (``normalize.folded_bytes``: words separated by
spaces), never as Python lists of words: word boundaries, word hashes, shingle
hashes and the exact-text key are all numpy operations over the batch's bytes.

- a word's hash is a polynomial of its bytes mod 2^64, finished by splitmix64;
- an n-gram's hash is a fixed linear combination of its word hashes mod 2^64,
  folded to 32 bits;
- the exact-text key is a polynomial of the document's word hashes, finished the same.
Each has a scalar reference here (``token_hash``, ``shingle_hash``, ``tokens_hash``),
so datasketch given ``shingle_hash`` as its ``hashfunc`` produces bit-identical
signatures (tests/dedup/test_dedup_minhash.py), while the batch path needs no Python
loop per word or shingle (datasketch's sha1 per shingle dominates its run time, see
shared/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from curation.dedup.lsh import mix64

_MASK64 = (1 << 64) - 1
_P = 0x100000001B3  # FNV-64 prime: multiplier of a word's bytes
_Q = 0x9E3779B97F4A7C15 | 1  # multiplier of a document's word hashes
_LEN = 0xD6E8FEB86659FD93  # mixes the length in, so b"a" and b"a\x00" differ
_P_INV = pow(_P, -1, 1 << 64)
_SPACE = 32
_CHUNK_BYTES = 1 << 20  # bytes hashed per numpy pass (~30 MB of temporaries)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _finish(x: int) -> int:
    """Scalar ``lsh.mix64``."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _coefficients(n: int) -> list[int]:
    """Odd, position-specific multipliers: the n-gram hash depends on word order."""
    return [_splitmix64(i + 1) | 1 for i in range(n)]


def token_hash(token: str | bytes) -> int:
    """64-bit hash of one normalized word (scalar reference of the batch path)."""
    data = token if isinstance(token, bytes) else token.encode("utf-8")
    acc = 0
    for k, b in enumerate(data):
        acc = (acc + (b + 1) * pow(_P, k, 1 << 64)) & _MASK64
    return _finish((acc + len(data) * _LEN) & _MASK64)


def shingle_hash(token_hashes: Sequence[int]) -> int:
    """The 32-bit hash of one n-gram given its word hashes (fewer than n for a short
    document): scalar reference of the batch path."""
    acc = 0
    for h, c in zip(token_hashes, _coefficients(len(token_hashes))):
        acc = (acc + h * c) & _MASK64
    return (acc >> 32) ^ (acc & 0xFFFFFFFF)


def tokens_hash(token_hashes: Sequence[int]) -> int:
    """The exact-text key of a document from its word hashes (scalar reference)."""
    acc = 0
    for i, h in enumerate(token_hashes):
        acc = (acc + h * pow(_Q, i, 1 << 64)) & _MASK64
    return _finish(acc ^ len(token_hashes))


def shingle_tuples(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of a token list as tuples (a short text is one shingle)."""
    if not tokens:
        return []
    if len(tokens) < n:
        return [tuple(tokens)]
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _powers(base: int, n: int) -> np.ndarray:
    """base**k mod 2^64 for k in [0, n)."""
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)  # wraps mod 2^64 by design


def _word_hashes(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and 64-bit hashes of the space-separated words of ``buf``: each
    word's polynomial is a difference of prefix sums of (byte + 1) * P^k, shifted
    back to its start by the inverse power (P is odd, so it has one mod 2^64)."""
    word = np.r_[0, (buf != _SPACE).view(np.int8), 0]
    edges = np.diff(word)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    prefix = np.zeros(len(buf) + 1, dtype=np.uint64)
    np.cumsum((buf.astype(np.uint64) + np.uint64(1)) * _powers(_P, len(buf)), out=prefix[1:])
    # P^-start for each word: products of P^-gap over the gaps between word starts
    gaps = np.diff(starts, prepend=0)
    shift = np.cumprod(_powers(_P_INV, int(gaps.max(initial=0)) + 1)[gaps], dtype=np.uint64)
    poly = (prefix[ends] - prefix[starts]) * shift
    lengths = (ends - starts).astype(np.uint64)
    return starts, mix64(poly + lengths * np.uint64(_LEN))


def word_hashes(buf: bytes | bytearray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes of texts laid out in one buffer (text d ends at ``ends[d]``, texts
    separated by spaces): ``(hashes uint64, offsets int64)``, text d's words are
    ``hashes[offsets[d]:offsets[d+1]]``."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    parts, counts = [], np.zeros(len(ends), dtype=np.int64)
    d0, lo = 0, 0
    while d0 < len(ends):  # chunks of whole texts, ~_CHUNK_BYTES each
        d1 = max(d0 + 1, int(np.searchsorted(ends, lo + _CHUNK_BYTES, side="right")))
        hi = int(ends[d1 - 1])
        starts, hashes = _word_hashes(arr[lo:hi])
        counts[d0:d1] = np.diff(np.r_[0, np.searchsorted(starts, ends[d0:d1] - lo)])
        parts.append(hashes)
        d0, lo = d1, hi
    flat = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    return flat, np.r_[0, np.cumsum(counts)].astype(np.int64)


def batch_word_hashes(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``word_hashes`` of a list of normalized texts."""
    ends = np.cumsum([len(t) + 1 for t in texts], dtype=np.int64)
    return word_hashes(b" ".join(texts) + b" ", ends)


def texts_hashes(words: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Exact-text key (uint64) of each text from its word hashes; 0 for an empty one."""
    lengths = np.diff(offsets)
    out = np.zeros(len(lengths), dtype=np.uint64)
    if len(words) == 0:
        return out
    powers = np.cumprod(np.r_[np.uint64(1), np.full(int(lengths.max()) - 1, np.uint64(_Q))]
                        .astype(np.uint64), dtype=np.uint64)
    pos = np.arange(len(words)) - np.repeat(offsets[:-1], lengths)
    terms = words * powers[pos]
    nonempty = lengths > 0
    sums = np.add.reduceat(terms, offsets[:-1][nonempty])
    out[nonempty] = mix64(sums ^ lengths[nonempty].astype(np.uint64))
    return out


def shingles_of_words(words: np.ndarray, offsets: np.ndarray, n: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes (uint32) from word hashes: ``(hashes, offsets)`` per text."""
    lengths = np.diff(offsets)
    # n-1 zeros after each document: no n-gram crosses a boundary
    starts = np.concatenate(([0], np.cumsum(lengths + n - 1)[:-1])).astype(np.int64)
    padded = np.zeros(len(words) + (n - 1) * (len(lengths) + 1), dtype=np.uint64)
    padded[np.repeat(starts - offsets[:-1], lengths) + np.arange(len(words))] = words
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    out_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    positions = np.repeat(starts - out_offsets[:-1], counts) + np.arange(out_offsets[-1])
    # every window of the padded stream at once (contiguous slices), then the starts
    span = len(padded) - n + 1
    acc = np.zeros(span, dtype=np.uint64)
    for i, c in enumerate(_coefficients(n)):
        acc += padded[i:i + span] * np.uint64(c)  # wraps mod 2^64 by design
    acc = acc[positions]
    folded = (acc >> np.uint64(32)) ^ (acc & np.uint64(0xFFFFFFFF))
    return folded.astype(np.uint32), out_offsets


def batch_shingle_hashes(docs_tokens: list[list[str]] | list[list[bytes]],
                         n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of many documents given as word lists (see ``shingles_of_words``)."""
    texts = [b" ".join(t if isinstance(t, bytes) else t.encode("utf-8") for t in toks)
             for toks in docs_tokens]
    words, offsets = batch_word_hashes(texts)
    return shingles_of_words(words, offsets, n)

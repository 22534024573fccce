"""Our vectorized signatures against datasketch, the reference."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32

from curation.dedup.minhash import EMPTY, MinHasher, estimate_jaccard
from curation.dedup.normalize import words
from curation.dedup.shingles import batch_shingle_hashes, shingle_hash, shingle_tuples, token_hash

TEXTS = [
    "The quick brown fox jumps over the lazy dog, again and again and again.",
    "THE QUICK brown fox — jumps over the lazy dog again and again; and AGAIN!",
    "short text",
    "",
    "Ｆｕｌｌｗｉｄｔｈ letters fold under NFKC to the same words as ascii ones do",
]


def _tuple_hash(shingle: tuple[str, ...]) -> int:
    return shingle_hash([token_hash(t) for t in shingle])


def test_batch_shingle_hashes_equal_the_scalar_reference():
    tokens = [words(t) for t in TEXTS]
    hashes, offsets = batch_shingle_hashes(tokens, 5)
    for i, toks in enumerate(tokens):
        expected = [_tuple_hash(s) for s in shingle_tuples(toks, 5)]
        assert hashes[offsets[i]:offsets[i + 1]].tolist() == expected
    assert offsets[4] - offsets[3] == 0  # empty text: no shingle
    assert offsets[3] - offsets[2] == 1  # shorter than n: one shingle


@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 42), (256, 7)])
def test_signatures_are_bit_identical_to_datasketch(num_perm, seed):
    tokens = [words(t) for t in TEXTS]
    hashes, offsets = batch_shingle_hashes(tokens, 5)
    sigs = MinHasher(num_perm, seed).signatures(hashes, offsets)
    for i, toks in enumerate(tokens):
        ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=_tuple_hash)
        ref.update_batch(shingle_tuples(toks, 5))
        assert ref.scheme == "affine32"
        np.testing.assert_array_equal(sigs[i], ref.hashvalues)
    assert (sigs[3] == EMPTY).all()


def test_same_estimates_as_datasketch_with_its_default_sha1_hash():
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(400)]
    base = list(rng.choice(vocab, 300))
    docs = [base, base[:250] + list(rng.choice(vocab, 50)), list(rng.choice(vocab, 300))]
    shingles = [[" ".join(s).encode() for s in shingle_tuples(d, 5)] for d in docs]
    flat = np.array([sha1_hash32(b) for s in shingles for b in s], dtype=np.uint32)
    offsets = np.cumsum([0] + [len(s) for s in shingles])
    ours = MinHasher(128).signatures(flat, offsets)
    ref = MinHash.bulk(shingles, num_perm=128)
    for i in range(3):
        np.testing.assert_array_equal(ours[i], ref[i].hashvalues)
        for j in range(3):
            assert estimate_jaccard(ours[i], ours[j])[0] == ref[i].jaccard(ref[j])


def test_large_batches_are_chunked_without_changing_results():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**32, 300_000, dtype=np.uint32)
    offsets = np.array([0, 5, 5, 150_000, 299_999, 300_000])
    hasher = MinHasher(64)
    sigs = hasher.signatures(hashes, offsets)
    for d in range(5):
        part = hashes[offsets[d]:offsets[d + 1]]
        np.testing.assert_array_equal(sigs[d], hasher.signature_of(part))


@pytest.mark.parametrize("exact", [True, False])
def test_batched_pair_similarities_equal_the_scalar_one(exact):
    from curation.dedup.finder import pair_similarities, pair_similarity

    rng = np.random.default_rng(4)
    size = (lambda: rng.integers(1, 200)) if exact else (lambda: 128)
    a = [rng.integers(0, 300, size()).astype(np.uint32).tobytes() for _ in range(60)]
    b = [rng.integers(0, 300, size()).astype(np.uint32).tobytes() for _ in range(60)]
    b[3], a[7], b[8] = a[3], None, b""  # identical, and two without payload
    got = pair_similarities(a, b, exact)
    want = np.array([pair_similarity(x, y, exact) for x, y in zip(a, b)])
    np.testing.assert_array_equal(got, want)  # NaN where a payload is missing
    assert got[3] == 1.0 and np.isnan(got[7]) and np.isnan(got[8])

"""Planted near-duplicate corpora, for the quality tests and bench/dedup.py.

Documents are built from real alt-text sentences (img2dataset's LAION-style test
file) with a seeded RNG; a share of them get variants by word edits, sentence
insertions, deletions, or shuffled paragraphs, so the true Jaccard of planted pairs
spreads over 0.3-1.0 around any threshold. Ground truth is computed exactly later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

OPERATIONS = ("edit", "insert", "delete", "shuffle")


@dataclass
class SyntheticDoc:
    doc_id: str
    text: str
    family: int  # documents planted from the same base share a family


def load_sentences(path: str, column: str = "TEXT") -> list[str]:
    texts = pq.read_table(path, columns=[column]).column(column).to_pylist()
    return [t.strip() for t in texts if isinstance(t, str) and len(t.split()) >= 3]


def _base(rng: np.random.Generator, sentences: list[str], vocab: list[str],
          size: tuple[int, int]) -> list[list[str]]:
    picks = rng.choice(len(sentences), rng.integers(*size))
    doc = [sentences[i].split() for i in picks]
    for sent in doc:  # a few random words make every base document distinct
        for j in range(len(sent)):
            if rng.random() < 0.15:
                sent[j] = vocab[rng.integers(len(vocab))]
    return doc


def _variant(rng: np.random.Generator, doc: list[list[str]], sentences: list[str],
             vocab: list[str]) -> list[list[str]]:
    doc = [list(s) for s in doc]
    op = OPERATIONS[rng.integers(len(OPERATIONS))]
    if op == "edit":
        rate = rng.uniform(0.005, 0.06)
        for sent in doc:
            for j in range(len(sent)):
                if rng.random() < rate:
                    sent[j] = vocab[rng.integers(len(vocab))]
    elif op == "insert":
        for _ in range(rng.integers(1, 8)):
            doc.insert(rng.integers(len(doc) + 1), sentences[rng.integers(len(sentences))].split())
    elif op == "delete":
        for _ in range(min(len(doc) - 1, rng.integers(1, 8))):
            doc.pop(rng.integers(len(doc)))
    else:  # shuffle paragraphs of ~6 sentences
        paras = [doc[i:i + 6] for i in range(0, len(doc), 6)]
        rng.shuffle(paras)
        doc = [s for p in paras for s in p]
    return doc


def make_corpus(sentences: list[str], n_docs: int, dup_fraction: float = 0.3,
                seed: int = 0, size: tuple[int, int] = (20, 45)) -> list[SyntheticDoc]:
    """About ``dup_fraction`` of the documents are planted variants of another."""
    rng = np.random.default_rng(seed)
    vocab = sorted({w for s in sentences for w in s.split()})
    out: list[SyntheticDoc] = []
    family = 0
    while len(out) < n_docs:
        base = _base(rng, sentences, vocab, size)
        members = [base]
        if rng.random() < dup_fraction / (1 - dup_fraction) / 1.5:
            for _ in range(rng.integers(1, 3)):
                parent = members[rng.integers(len(members))]
                members.append(_variant(rng, parent, sentences, vocab))
        for words_ in members[: n_docs - len(out)]:
            text = ". ".join(" ".join(s) for s in words_)
            out.append(SyntheticDoc(f"doc{len(out):07d}", text, family))
        family += 1
    return out


@dataclass
class SentenceDoc:
    """A planted document as a list of sentences (an MMC4 ``text_list``)."""

    sentences: list[str]
    family: int


def _join_sentences(vocab: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> list[str]:
    words_ = vocab[ids]
    bounds = np.r_[0, np.cumsum(lengths)]
    return [" ".join(words_[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def make_sentence_corpus(sentences: list[str], n_docs: int, dup_fraction: float = 0.3,
                         seed: int = 0, size: tuple[int, int] = (20, 45)
                         ) -> list[SentenceDoc]:
    """``make_corpus`` for large benchmarks: the same kinds of edits, vectorized with
    numpy per document (about 20x faster), documents kept as sentence lists."""
    rng = np.random.default_rng(seed)
    vocab_list = sorted({w for s in sentences for w in s.split()})
    vocab = np.array(vocab_list, dtype=object)
    index = {w: i for i, w in enumerate(vocab_list)}
    sent_ids = [np.array([index[w] for w in s.split()], dtype=np.int64) for s in sentences]
    p_variant = dup_fraction / (1 - dup_fraction) / 1.5
    out: list[SentenceDoc] = []
    family = 0
    while len(out) < n_docs:
        base = [sent_ids[i].copy() for i in rng.choice(len(sent_ids), rng.integers(*size))]
        flat = np.concatenate(base)
        hit = rng.random(len(flat)) < 0.15
        flat[hit] = rng.integers(len(vocab), size=int(hit.sum()))
        members = [np.split(flat, np.cumsum([len(s) for s in base])[:-1])]
        if rng.random() < p_variant:
            for _ in range(rng.integers(1, 3)):
                parent = members[rng.integers(len(members))]
                members.append(_fast_variant(rng, parent, sent_ids, len(vocab)))
        for doc in members[: n_docs - len(out)]:
            lengths = np.array([len(s) for s in doc])
            out.append(SentenceDoc(_join_sentences(vocab, np.concatenate(doc), lengths),
                                   family))
        family += 1
    return out


def _fast_variant(rng: np.random.Generator, doc: list[np.ndarray],
                  sent_ids: list[np.ndarray], n_vocab: int) -> list[np.ndarray]:
    doc = [s.copy() for s in doc]
    op = OPERATIONS[rng.integers(len(OPERATIONS))]
    if op == "edit":
        rate = rng.uniform(0.005, 0.06)
        for s in doc:
            hit = rng.random(len(s)) < rate
            s[hit] = rng.integers(n_vocab, size=int(hit.sum()))
    elif op == "insert":
        for _ in range(rng.integers(1, 8)):
            doc.insert(rng.integers(len(doc) + 1), sent_ids[rng.integers(len(sent_ids))])
    elif op == "delete":
        for _ in range(min(len(doc) - 1, rng.integers(1, 8))):
            doc.pop(rng.integers(len(doc)))
    else:
        paras = [doc[i:i + 6] for i in range(0, len(doc), 6)]
        rng.shuffle(paras)
        doc = [s for p in paras for s in p]
    return doc

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

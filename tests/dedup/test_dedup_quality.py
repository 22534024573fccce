"""Planted near-duplicates at known Jaccard: precision and recall at the configured
threshold must be what the MinHash parameters predict."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest

from curation.dedup.facts import FactTable, compute_facts
from curation.dedup.finder import find_duplicates, near_duplicate_pairs
from curation.dedup.lsh import detection_probability
from curation.dedup.params import DedupConfig
from curation.dedup.quality import jaccard, precision_recall, predicted_detection, shingle_set
from curation.dedup.synthetic import load_sentences, make_corpus
from curation.document import Document, Provenance
from tests.conftest import DATA


@pytest.fixture(scope="module")
def corpus():
    sentences = load_sentences(str(DATA / "laion_test_1000.parquet"))
    docs = make_corpus(sentences, 1200, dup_fraction=0.4, seed=7)
    return [Document(d.doc_id, "mmc4", None, [d.text], [], Provenance("synthetic", i + 1),
                     metadata={"family": d.family}) for i, d in enumerate(docs)]


def _truth(docs, found_pairs, cfg):
    """Exact Jaccard of every planted pair and every reported pair."""
    shingles = [shingle_set(d.texts[0], cfg.ngram) for d in docs]
    families = defaultdict(list)
    for i, d in enumerate(docs):
        families[d.metadata["family"]].append(i)
    pairs = {p for m in families.values() for p in itertools.combinations(m, 2)}
    pairs |= found_pairs
    return {p: jaccard(shingles[p[0]], shingles[p[1]]) for p in pairs}


def test_pairs_match_what_the_parameters_predict(corpus):
    cfg = DedupConfig(verify_exact=False)  # cut on the signature estimate
    table = FactTable.from_records(compute_facts(corpus, cfg), cfg.num_perm)
    u, v, _ = near_duplicate_pairs(table, cfg)
    found = {(int(a), int(b)) for a, b in zip(u, v)}
    truth_j = _truth(corpus, found, cfg)
    truth = {p for p, j in truth_j.items() if j >= cfg.threshold}
    assert len(truth) > 150 and len(truth_j) - len(truth) > 150  # both sides populated
    precision, recall = precision_recall(found, truth)

    js = np.array(list(truth_j.values()))
    p_detect = predicted_detection(js, cfg)
    positive = js >= cfg.threshold
    exp_tp, exp_fp = p_detect[positive].sum(), p_detect[~positive].sum()
    exp_recall = exp_tp / positive.sum()
    exp_precision = exp_tp / (exp_tp + exp_fp)
    # binomial tolerance: 4 standard deviations of the pair counts
    tol_r = 4 * np.sqrt(np.sum(p_detect[positive] * (1 - p_detect[positive]))) / positive.sum()
    tol_p = 4 * np.sqrt(np.sum(p_detect * (1 - p_detect))) / max(len(found), 1)
    assert abs(recall - exp_recall) <= tol_r + 0.01, (recall, exp_recall)
    assert abs(precision - exp_precision) <= tol_p + 0.01, (precision, exp_precision)
    # and far from the threshold the decision is right
    clear_pos = {p for p, j in truth_j.items() if j >= 0.9}
    clear_neg = {p for p, j in truth_j.items() if j < 0.65}
    assert len(clear_pos & found) >= 0.99 * len(clear_pos)
    assert not clear_neg & found


def test_exact_verification_gives_full_precision(corpus):
    cfg = DedupConfig()
    assert cfg.verify_exact  # the default
    table = FactTable.from_records(compute_facts(corpus, cfg), cfg.num_perm)
    u, v, sim = near_duplicate_pairs(table, cfg)
    found = set(zip(u.tolist(), v.tolist()))
    truth_j = _truth(corpus, found, cfg)
    positive = {p: j for p, j in truth_j.items() if j >= cfg.threshold}
    # recall is the LSH detection probability alone
    expected = detection_probability(np.array(list(positive.values())), cfg.bands,
                                     cfg.rows)
    recall = len(found & set(positive)) / len(positive)
    tol = 4 * np.sqrt(np.sum(expected * (1 - expected))) / len(positive) + 0.01
    assert abs(recall - expected.mean()) <= tol and recall >= 0.97
    for a, b, s in zip(u.tolist(), v.tolist(), sim):
        # shingle-hash Jaccard equals the string Jaccard (no 32-bit collisions here)
        assert s == pytest.approx(truth_j[(a, b)], abs=1e-9)
        assert truth_j[(a, b)] >= cfg.threshold


def test_removed_documents_stay_within_their_family(corpus):
    cfg = DedupConfig()
    table = FactTable.from_records(compute_facts(corpus, cfg), cfg.num_perm)
    dups = find_duplicates(table, cfg)
    family = {d.doc_id: d.metadata["family"] for d in corpus}
    assert len(dups) > 100
    assert all(family[d["doc_id"]] == family[d["duplicate_of"]] for d in dups)
    assert {d["method"] for d in dups} <= {"exact", "minhash"}  # no URLs here
    kept = {d["duplicate_of"] for d in dups}
    assert not kept & {d["doc_id"] for d in dups}  # a survivor is never removed

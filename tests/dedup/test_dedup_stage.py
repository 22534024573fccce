"""The dedup stage's collect/fit/apply contract, methods, and kept-document rule."""

from __future__ import annotations

import json

import numpy as np

from curation.decisions import facts_table, unit_decision, unit_rids
from curation.dedup.stage import DedupStage
from curation.document import Document, ImageRecord, Provenance
from curation.pipeline_config import parse_pipeline
from curation.registry import STAGES

RNG = np.random.default_rng(5)
VOCAB = [f"word{i}" for i in range(3000)]


def _text(n=200):
    return " ".join(RNG.choice(VOCAB, n))


def _doc(doc_id, text, url=None, images=0, line=1, source="mmc4"):
    return Document(doc_id, source, url, [text],
                    [ImageRecord(f"http://img/{doc_id}/{i}") for i in range(images)],
                    Provenance("in.jsonl", line))


def _run(stage, units):
    """What the runner does: collect per unit (rids per unit), one fit, apply per unit
    with the unit's slice; returns the units and the removed records by doc_id."""
    import pyarrow as pa

    names = [f"{u:05d}-00000" for u in range(len(units))]
    rids = [unit_rids(n, len(d)) for n, d in zip(names, units)]
    facts = pa.concat_tables([facts_table(stage, n, r, stage.collect(d))
                              for n, r, d in zip(names, rids, units)])
    decision = stage.fit(facts)
    summary = json.loads(json.dumps(decision.summary))  # JSON-safe, as the runner stores it
    out = [stage.apply(d, unit_decision(summary, decision.rows, r))
           for d, r in zip(units, rids)]
    docs = {rid: doc for r, d in zip(rids, units) for rid, doc in zip(r, d)}
    removed = [{**row, "doc_id": docs[row["rid"]].doc_id,
                "location": docs[row["rid"]].provenance.location()}
               for row in decision.rows.to_pylist()]
    return out, {**summary, "duplicates": removed}


def test_each_method_and_the_kept_rule():
    a, b, c = _text(), _text(), _text()
    near = a.split()
    near[100] = "changed"
    docs = [
        _doc("a1", a, "http://site.com/a", images=1, line=1),
        _doc("a2", " ".join(near), "http://mirror.org/a", images=3, line=2),  # near dup
        _doc("b1", b, "http://site.com/b", line=3),
        _doc("b2", b.upper() + "!!", "http://other.com/b", line=4),  # exact after folding
        _doc("c1", c, "https://www.site.com/c/", line=5),
        _doc("c2", _text(), "http://site.com/c", line=6),  # same URL, other text
        _doc("u1", _text(), "http://u.com/1", line=7),
    ]
    stage = DedupStage()
    (out1, out2), decision = _run(stage, [docs[:4], docs[4:]])
    by_id = {d.doc_id: d for d in out1 + out2}
    dups = {d["doc_id"]: d for d in decision["duplicates"]}
    assert set(dups) in ({"a1", "b1", "c1"}, {"a1", "b1", "c2"})
    assert dups["a1"]["duplicate_of"] == "a2"  # most images wins
    assert dups["a1"]["method"] == "minhash" and 0.8 <= dups["a1"]["similarity"] < 1
    # same normalized text; b2 is longer by its "!!", so it is the one kept
    assert dups["b1"] == {**dups["b1"], "duplicate_of": "b2", "method": "exact",
                          "similarity": 1.0}
    url_dup = dups.get("c1") or dups.get("c2")
    assert url_dup["method"] == "url" and url_dup["similarity"] < 0.2
    assert by_id["a1"].drop_reason == "duplicate_minhash"
    assert by_id["a1"].dropped_by == "dedup"
    assert by_id["b1"].drop_reason == "duplicate_exact"
    assert by_id["a1"].metadata["dedup"]["duplicate_of"] == "a2"
    assert sum(d.kept for d in by_id.values()) == 4
    assert decision["counts"] == {"minhash": 1, "exact": 1, "url": 1}


def test_chains_end_at_a_surviving_document():
    a = _text()
    docs = [_doc("x1", a, "http://p.com/1", line=1), _doc("x2", a, "http://p.com/1", line=2),
            _doc("x3", a, "http://q.com/", images=2, line=3)]
    (out,), decision = _run(DedupStage(), [docs])
    survivors = [d.doc_id for d in out if d.kept]
    assert survivors == ["x3"]
    assert {d["duplicate_of"] for d in decision["duplicates"]} == {"x3"}


def test_same_doc_id_twice_keeps_one_record():
    text = _text()
    docs = [_doc("same", text, "http://s.com/", line=1),
            _doc("same", text, "http://s.com/", line=9)]
    (out,), decision = _run(DedupStage(), [docs])
    assert [d.kept for d in out] == [True, False]
    assert decision["duplicates"][0]["location"] == "in.jsonl:9"


def test_pairs_are_keyed_by_image_url_not_caption():
    docs = [_doc("p1", "a red car", images=1, line=1, source="coyo"),
            _doc("p2", "a red car", images=1, line=2, source="coyo"),
            _doc("p3", "another caption", images=1, line=3, source="coyo")]
    docs[2].images[0].url = docs[0].images[0].url
    (out,), decision = _run(DedupStage(), [docs])
    assert [d.kept for d in out] == [False, True, True]  # same caption, other image: kept
    assert decision["duplicates"][0]["method"] == "url"
    assert decision["duplicates"][0]["duplicate_of"] == "p3"  # longer caption wins
    assert decision["duplicates"][0]["similarity"] is None


def test_dropped_and_empty_documents_are_left_alone():
    docs = [_doc("e1", "", "http://e.com/1", images=1), _doc("e2", "", "http://e.com/2", images=1)]
    gone = _doc("g", "", "http://e.com/1")
    gone.drop("too_short", "filter")
    (out,), decision = _run(DedupStage(), [docs + [gone]])
    assert decision["duplicates"] == []
    assert out[2].drop_reason == "too_short"


def test_ties_go_to_the_smallest_doc_id_then_the_first_record():
    """Same images, same text length: the smallest doc_id stays, whatever the input
    order; a doc_id read twice keeps its first record (README, "Deduplication")."""
    text = _text()
    docs = [_doc("m", text, "http://x.com/3", line=1), _doc("k", text, "http://x.com/1",
                                                              line=2),
            _doc("z", text, "http://x.com/2", line=3), _doc("k", text, "http://x.com/4",
                                                              line=4)]
    (out,), decision = _run(DedupStage(), [docs])
    assert [d.kept for d in out] == [False, True, False, False]
    assert {(d["location"], d["duplicate_of"], d["duplicate_of_location"])
            for d in decision["duplicates"]} == {
        ("in.jsonl:1", "k", "in.jsonl:2"), ("in.jsonl:3", "k", "in.jsonl:2"),
        ("in.jsonl:4", "k", "in.jsonl:2")}


def test_yaml_validates(monkeypatch):
    monkeypatch.setitem(STAGES, "dedup", "curation.dedup.stage:DedupStage")
    cfg = parse_pipeline({"stages": [{"dedup": {"threshold": 0.7, "bands": 14, "rows": 8,
                                                "num_perm": 112}}]})
    assert cfg.stages[0].stage.config.bands == 14

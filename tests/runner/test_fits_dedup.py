"""The distributed dedup fit decides what the in-process fit decides, on facts staged
as the runner stages them (one Parquet file per unit)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.decisions import facts_table, unit_rids
from curation.dedup.stage import DedupStage
from curation.document import Document, ImageRecord, Provenance

RNG = np.random.default_rng(21)
VOCAB = [f"w{i}" for i in range(4000)]


def _text(n=120):
    return " ".join(RNG.choice(VOCAB, n))


def _edit(text, at):
    words = text.split()
    for i in at:
        words[i] = "edited"
    return " ".join(words)


def _doc(doc_id, text, url, images=0, line=1):
    return Document(doc_id, "mmc4", url, [text],
                    [ImageRecord(f"http://img/{doc_id}/{i}") for i in range(images)],
                    Provenance("in.jsonl", line))


def _corpus() -> list[list[Document]]:
    a, b, c, p, big = _text(), _text(), _text(), _text(), _text(200)
    unit0 = [
        _doc("a1", a, "http://a.com/1", line=1),
        _doc("a1", a, "http://a.com/1", line=2),  # same record twice: the first stays
        _doc("a2", _edit(a, [5]), "http://a.com/2", images=2, line=3),  # near dup, kept
        _doc("b1", b, "http://b.com/1", line=4),
        _doc("b2", b.upper(), "http://b.com/2", line=5),  # exact after folding
        _doc("p1", p, "http://p.com/same", line=6),
        _doc("u1", _text(), "http://u.com/1", line=7),
    ]
    unit1 = [
        # p1's URL twin wins the URL step with more images; p3 (near p1) meets p2
        # through p1 and is re-checked on p2: different text, so p3 stays
        _doc("p2", _text(), "http://p.com/same", images=3, line=1),
        _doc("p3", _edit(p, [7]), "http://p.com/3", line=2),
        # a chain: c1 -URL-> c2 -exact-> c3 -minhash-> c4 (most images)
        _doc("c1", _text(), "http://c.com/x", line=3),
        _doc("c2", c, "http://c.com/x", images=1, line=4),
        _doc("c3", c, "http://c.com/y", images=2, line=5),
        _doc("c4", _edit(c, [3]), "http://c.com/z", images=4, line=6),
    ]
    # a bucket larger than max_all_pairs (4): seven one-word edits of one text
    unit2 = [_doc(f"g{i}", _edit(big, [10 + 25 * i]), f"http://g.com/{i}", line=i + 1)
             for i in range(7)]
    return [unit0, unit1, unit2]


def _staged(stage, units, tmp_path) -> tuple[pa.Table, list[str]]:
    tables, paths = [], []
    for u, docs in enumerate(units):
        unit = f"{u:05d}-00000"
        table = facts_table(stage, unit, unit_rids(unit, len(docs)), stage.collect(docs))
        path = tmp_path / f"{unit}.facts.parquet"
        pq.write_table(table, path)
        tables.append(table)
        paths.append(str(path))
    return pa.concat_tables(tables), paths


def _rows(ds) -> list[dict]:
    return sorted(ds.to_pandas().to_dict("records") if ds is not None else [],
                  key=lambda r: r["rid"])


def _local_rows(decision) -> list[dict]:
    return sorted(decision.rows.to_pylist(), key=lambda r: r["rid"])


@pytest.mark.parametrize("local_edges", [10**9, 0], ids=["local-finish", "star-contraction"])
def test_dedup_fit_equals_in_process(ray_session, tmp_path, local_edges):
    import ray

    from curation.runner.fits.dedup import fit_dedup
    from curation.runner.fits.shuffle import task_shuffles

    stage = DedupStage(DedupStage.Config(max_all_pairs=4))
    units = _corpus()
    facts, paths = _staged(stage, units, tmp_path)
    expected = stage.fit(facts)
    with task_shuffles():
        summary, rows = fit_dedup(stage, ray.data.read_parquet(paths),
                                  local_edges=local_edges)
    got = _rows(rows)
    want = _local_rows(expected)
    for r in got:  # pandas gives NaN where Arrow has null
        r["similarity"] = None if r["similarity"] != r["similarity"] else r["similarity"]
    assert got == want
    assert summary == expected.summary
    # the decisions themselves, from the corpus' construction
    by = {(r["rid"] >> 40, r["rid"] & 0xFFFFF): r for r in want}
    assert by[(0, 1)]["method"] == "url" and by[(0, 1)]["duplicate_of"] == "a2"
    assert by[(0, 0)]["method"] == "minhash" and by[(0, 0)]["duplicate_of"] == "a2"
    # b1, b2: same images, same length: the smaller doc_id stays
    assert (by[(0, 4)]["method"], by[(0, 4)]["duplicate_of"]) == ("exact", "b1")
    assert (1, 1) not in by  # p3 re-checked on p2: kept
    assert {by[(1, i)]["duplicate_of"] for i in (2, 3, 4)} == {"c4"}
    assert [by[(1, i)]["method"] for i in (2, 3, 4)] == ["url", "exact", "minhash"]
    group = units[2]
    longest = max(group, key=lambda d: (len(d.texts[0]), [-ord(c) for c in d.doc_id]))
    big = [r for r in want if r["rid"] >> 40 == 2]
    assert len(big) == 6 and {r["duplicate_of"] for r in big} == {longest.doc_id}
    assert summary["counts"] == {"url": 3, "exact": 2, "minhash": 8}


def test_registry_dispatches_and_no_rows_is_none(ray_session):
    import ray

    from curation.runner.fits import fit_distributed

    stage = DedupStage()
    docs = [_doc(f"x{i}", _text(), f"http://x.com/{i}", line=i + 1) for i in range(5)]
    facts = facts_table(stage, "00000-00000", unit_rids("00000-00000", 5), stage.collect(docs))
    summary, rows = fit_distributed(stage, ray.data.from_arrow(facts))
    assert summary == {"counts": {}, "documents": 5} == stage.fit(facts).summary
    assert rows is None

"""The distributed image_frequency fit counts distinct documents per identity (sha256,
pHash, URL) and names the same image slots as the in-process fit."""

from __future__ import annotations

import pyarrow as pa

from curation.dedup.images import ImageFrequencyStage
from curation.stage import facts_schema


def _facts(stage, rows) -> pa.Table:
    return pa.Table.from_pylist(
        [{"rid": rid, "unit": f"{rid >> 40:05d}-00000", "image": image, "key": key}
         for rid, image, key in rows], schema=facts_schema(stage))


def test_frequency_equals_in_process_for_each_key_kind(ray_session):
    import ray

    from curation.runner.fits import fit_distributed

    stage = ImageFrequencyStage(ImageFrequencyStage.Config(max_documents=2))
    f1 = 1 << 40
    rows = [
        # sha256:s1 in 3 documents (one of them twice): frequent
        (0, 0, "sha256:s1"), (1, 0, "sha256:s1"), (1, 1, "sha256:s1"), (f1, 2, "sha256:s1"),
        # phash:p1 in exactly 2 documents: kept
        (0, 1, "phash:p1"), (2, 0, "phash:p1"),
        # url:u1 in 3 documents, and slot (1, 0) is also frequent by sha256
        (1, 0, "url:u1"), (f1, 0, "url:u1"), (f1 + 1, 0, "url:u1"),
        # phash:p2 in 3 documents
        (2, 1, "phash:p2"), (3, 0, "phash:p2"), (f1 + 1, 1, "phash:p2"),
    ]
    facts = _facts(stage, rows)
    expected = stage.fit(facts)
    summary, got = fit_distributed(stage, ray.data.from_arrow(
        [facts.slice(i, 3) for i in range(0, facts.num_rows, 3)]))
    got_rows = sorted((r["rid"], r["unit"], r["image"]) for r in got.take_all())
    want = sorted((r["rid"], r["unit"], r["image"]) for r in expected.rows.to_pylist())
    assert got_rows == want
    assert summary == expected.summary
    assert summary == {"max_documents": 2, "frequent_keys": 3, "images": 9}
    assert [(rid, image) for rid, _, image in want] == [
        (0, 0), (1, 0), (1, 1), (2, 1), (3, 0), (f1, 0), (f1, 2), (f1 + 1, 0), (f1 + 1, 1)]


def test_nothing_frequent_has_no_rows(ray_session):
    import ray

    from curation.runner.fits import fit_distributed

    stage = ImageFrequencyStage()
    facts = _facts(stage, [(i, 0, f"url:u{i}") for i in range(5)])
    summary, rows = fit_distributed(stage, ray.data.from_arrow(facts))
    assert rows is None and summary == stage.fit(facts).summary

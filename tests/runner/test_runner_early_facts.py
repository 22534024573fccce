"""Facts collected early: a global stage right after dedup collects its facts in
dedup's pass (one pass over the corpus fewer), and its fit leaves out the documents
dedup drops, so it decides what a run with a pass between them decides."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from curation.location import Location
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import check_early_facts, run_pipeline
from curation.runner.plan import plan_segments


def stages_of(spec: list[dict]) -> list:
    cfg = parse_pipeline({"name": "p", "stages": spec})
    return [s.stage for s in cfg.stages]


def test_a_global_stage_after_dedup_collects_in_dedup_s_pass():
    segs = plan_segments(stages_of([{"dedup": {}}, {"image_frequency": {}},
                                    {"clip_topk": {"count": 3}}]))
    assert [s.runs for s in segs] == [True, False, True, True]
    assert [(k, st.name) for k, st in segs[0].also_collect] == [(1, "image_frequency")]
    assert segs[1].collected_by == 0 and segs[1].exclude == [0]
    # image_frequency drops images, and a matched_sim top-k scores the images that are
    # left: its facts cannot be collected before image_frequency applied
    assert segs[2].collected_by is None and segs[2].also_collect == []


def test_early_facts_chain_over_two_dedups_and_stop_at_a_stage_between():
    segs = plan_segments(stages_of([{"dedup": {}}, {"dedup": {"threshold": 0.5}},
                                    {"image_frequency": {}}]))
    assert [s.runs for s in segs] == [True, False, False, True]
    assert [k for k, _ in segs[0].also_collect] == [1, 2]
    assert segs[2].collected_by == 0 and segs[2].exclude == [0, 1]
    segs = plan_segments(stages_of([{"dedup": {}}, {"url_words": {}},
                                    {"image_frequency": {}}]))
    assert all(s.runs for s in segs) and segs[0].also_collect == []


def mmc4(i: int, body: str, images: list[str]) -> dict:
    return {"url": f"http://site/{i}", "text_list": [body, "second sentence"],
            "image_info": [{"raw_url": u, "matched_text_index": 0} for u in images],
            "quality": (i * 37 % 100) / 100}


def test_early_facts_leave_out_what_dedup_drops(ray_session, tmp_path):
    """A logo in 12 documents, 3 of them exact copies of another: after dedup it is in
    9 documents, under image_frequency's limit of 10, so it stays. Counting the facts
    collected before dedup applied (12 > 10) would drop it."""
    docs = []
    for i in range(24):
        body = " ".join(f"w{i}x{k}" for k in range(30))
        if i in (5, 9, 11):
            body = " ".join(f"w{i - 1}x{k}" for k in range(30))  # copy of doc i-1
        images = [f"http://i/{i}.jpg"] + (["http://cdn/logo.png"] if i < 12 else [])
        docs.append(mmc4(i, body, images))
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps(d) + "\n" for d in docs))

    def run(spec: list[dict], out: str, **options) -> dict:
        cfg = parse_pipeline({"name": "t", "ingest": {"docs_per_unit": 5}, "stages": spec,
                              "writer": {"max_samples": 4}, **options})
        return run_pipeline(cfg, [str(inputs)], str(tmp_path / out),
                            progress=lambda _: None)

    freq = {"image_frequency": {"max_documents": 10, "keys": ["url"]}}
    topk = {"clip_topk": {"count": 15, "score": "quality"}}
    early = run([{"dedup": {}}, freq, topk], "early")
    # a filter that drops nothing between them: image_frequency collects its facts in
    # a pass of its own, after dedup applied (the reference)
    between = run([{"dedup": {}}, {"url_words": {"words": ["zzzz"]}}, freq, topk], "between")
    spread = run([{"dedup": {}}, freq, topk], "spread", local_fit_max_facts=0)
    assert early["documents_dropped"] == {"dedup:duplicate_exact": 3,
                                          "clip_topk:low_clip_score": 6}
    assert "too_frequent" not in early["image_status"]
    for other in (between, spread):
        for key in ("documents_written", "documents_dropped", "image_status"):
            assert other[key] == early[key], key
    keys = [pq.read_table(tmp_path / o / "manifest").column("key").to_pylist()
            for o in ("early", "between", "spread")]
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) == 15
    # with one more copy-free logo document the logo is frequent again: the fit counts
    # documents, not facts collected before dedup
    docs.append(mmc4(24, "fresh text of its own here", ["http://cdn/logo.png", "http://i/x"]))
    docs.append(mmc4(25, "another fresh text of its own", ["http://cdn/logo.png", "http://i/y"]))
    inputs.write_text("".join(json.dumps(d) + "\n" for d in docs))
    again = run([{"dedup": {}}, freq, topk], "again")
    assert again["image_status"]["too_frequent"] == 11


def test_an_output_without_the_early_facts_is_refused_not_fitted_on_part(tmp_path):
    """A resumed output whose first pass finished without image_frequency's facts
    (begun by a version that collected them in a pass of their own)."""
    segs = plan_segments(stages_of([{"dedup": {}}, {"image_frequency": {}}]))
    work = Location.of(str(tmp_path / "_work"))
    for unit in ("00000-00000", "00001-00000"):
        work.child("facts-00").write_bytes(f"{unit}.parquet", b"marker")
    work.child("facts-01").write_bytes("00000-00000.parquet", b"early")
    with pytest.raises(ValueError, match=r"facts are missing for 1 of 2 units "
                                         r"\(e\.g\. 00001-00000\).*--overwrite"):
        check_early_facts(segs[1], work)
    work.child("facts-01").write_bytes("00001-00000.parquet", b"early")
    check_early_facts(segs[1], work)  # complete: no error


def test_a_metadata_top_k_collects_before_image_frequency_too():
    segs = plan_segments(stages_of([{"dedup": {}}, {"image_frequency": {}},
                                    {"clip_topk": {"count": 3, "score": "q"}}]))
    assert [s.runs for s in segs] == [True, False, False, True]
    assert segs[2].collected_by == 0 and segs[2].exclude == [0]
    assert segs[2].exclude_emptied == [1] and segs[0].live_counts_for == {2}
    # a score from the images (matched_sim) changes when images go: its own pass
    segs = plan_segments(stages_of([{"dedup": {}}, {"image_frequency": {}},
                                    {"clip_topk": {"count": 3}}]))
    assert [s.runs for s in segs] == [True, False, True, True]


@pytest.mark.parametrize("keep_text_only", [False, True])
def test_early_top_k_leaves_out_what_image_frequency_empties(ray_session, tmp_path,
                                                             keep_text_only):
    """A logo in 14 documents (limit 10): six of them have no other image, so
    image_frequency empties them and they are dropped as no_images, unless
    keep_text_only. They have the best scores: a top-k fitted on facts collected
    before image_frequency applied must leave them out, as a run with a pass between
    the two stages does."""
    docs = []
    for i in range(30):
        body = " ".join(f"w{i}x{k}" for k in range(30))
        if i in (20, 25):
            body = " ".join(f"w{i - 1}x{k}" for k in range(30))  # exact copies
        images = ["http://cdn/logo.png"] if i < 14 else []
        if not 0 <= i < 6:
            images.append(f"http://i/{i}.jpg")
        doc = mmc4(i, body, images)
        doc["quality"] = 1.0 - i / 100  # the emptied documents score best
        docs.append(doc)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps(d) + "\n" for d in docs))

    def run(spec: list[dict], out: str, **options) -> dict:
        cfg = parse_pipeline({"name": "t", "ingest": {"docs_per_unit": 4}, "stages": spec,
                              "writer": {"max_samples": 4},
                              "keep_text_only": keep_text_only, **options})
        return run_pipeline(cfg, [str(inputs)], str(tmp_path / out),
                            progress=lambda _: None)

    freq = {"image_frequency": {"max_documents": 10, "keys": ["url"]}}
    topk = {"clip_topk": {"count": 10, "score": "quality"}}
    early = run([{"dedup": {}}, freq, topk], "early")
    between = run([{"dedup": {}}, freq, {"url_words": {"words": ["zzzz"]}}, topk], "between")
    spread = run([{"dedup": {}}, freq, topk], "spread", local_fit_max_facts=0)
    # 30 documents, 2 exact copies, 6 emptied (unless keep_text_only), top 10 kept
    emptied = {} if keep_text_only else {"image_frequency:no_images": 6}
    assert early["documents_dropped"] == {
        "dedup:duplicate_exact": 2, **emptied,
        "clip_topk:low_clip_score": 18 if keep_text_only else 12}
    assert early["documents_written"] == 10
    for other in (between, spread):
        for key in ("documents_written", "documents_dropped", "image_status"):
            assert other[key] == early[key], key
    ids = [sorted(pq.read_table(tmp_path / o / "manifest").column("doc_id").to_pylist())
           for o in ("early", "between", "spread")]
    assert ids[0] == ids[1] == ids[2]


def test_early_top_k_facts_without_live_counts_are_refused(tmp_path):
    """An output whose top-k facts were collected in a pass of their own (after
    image_frequency applied, so without live-image counts) is not fitted as if they
    had been collected before it."""
    import pyarrow as pa

    segs = plan_segments(stages_of([{"image_frequency": {}},
                                    {"clip_topk": {"count": 3, "score": "q"}}]))
    work = Location.of(str(tmp_path / "_work"))
    work.child("facts-00").write_bytes("00000-00000.parquet", b"marker")
    facts = pa.table({"rid": [1], "unit": ["00000-00000"], "score": [0.5]})
    work.child("facts-01").write_parquet("00000-00000.parquet", facts)
    with pytest.raises(ValueError, match="no live-image counts.*--overwrite"):
        check_early_facts(segs[1], work)
    work.child("facts-01").write_parquet(
        "00000-00000.parquet", facts.append_column("_live_images", pa.array([1], pa.int32())))
    check_early_facts(segs[1], work)

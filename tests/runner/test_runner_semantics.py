"""Counting and failure semantics of a run (issue 13): no document is written without
an image, top-k keeps exactly k, data errors drop one document, infrastructure errors
stop the run loudly, too many data errors stop it, stale shards never survive."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ray import cloudpickle

import tests.runner.faulty as faulty
from curation.document import Document, ImageRecord, Provenance, make_doc_id
from curation.errors import RunStopped
from curation.pipeline_config import parse_pipeline
from curation.registry import STAGES
from curation.runner.chain import ChainSettings, OpRunner, UnitReport
from curation.runner.passes import RunFailed
from curation.runner.pipeline import run_pipeline
from curation.runner.plan import Op
from curation.scoring.stage import ClipScoreConfig, ClipScoreStage

cloudpickle.register_pickle_by_value(faulty)


def mmc4(url: str, images: list[str], n_texts: int = 2, **extra) -> dict:
    return {"url": url, "text_list": [f"sentence {j} of {url}" for j in range(n_texts)],
            "image_info": [{"raw_url": u, "matched_text_index": 0} for u in images],
            **extra}


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def run(stages: list, inputs: Path, out: Path, **options):
    cfg = parse_pipeline({"name": "t", "ingest": {"docs_per_unit": 4}, "stages": stages,
                          "writer": {"max_samples": 5}, **options})
    return run_pipeline(cfg, [str(inputs)], str(out), progress=lambda _: None)


@pytest.fixture
def faulty_stage(monkeypatch):
    monkeypatch.setitem(STAGES, "faulty", "tests.runner.faulty:FaultyStage")


def test_a_document_left_without_images_is_dropped(ray_session, tmp_path):
    logo = "http://cdn.example/logo.png"
    docs = [mmc4(f"http://site/{i}", [logo]) for i in range(12)]
    docs += [mmc4(f"http://site/u{i}", [f"http://cdn.example/u{i}.jpg", logo])
             for i in range(3)]
    inputs = write_jsonl(tmp_path / "in.jsonl", docs)
    stages = [{"image_frequency": {"max_documents": 10, "keys": ["url"]}}]
    totals = run(stages, inputs, tmp_path / "out")
    # 12 documents lost their only image: dropped as no_images by image_frequency
    assert totals["documents_dropped"] == {"image_frequency:no_images": 12}
    assert totals["documents_written"] == 3
    assert totals["image_status"] == {"too_frequent": 15, "pending": 3}
    written = pq.read_table(tmp_path / "out" / "manifest").to_pylist()
    assert all(r["num_texts"] == 2 for r in written) and len(written) == 3
    kept = run(stages, inputs, tmp_path / "kept", keep_text_only=True)
    assert kept["documents_written"] == 15 and kept["documents_dropped"] == {}


def test_clip_dropping_the_last_image_drops_the_document():
    doc = Document("d1", "mmc4", None, ["a sentence"],
                   [ImageRecord("http://x/1.jpg", status="ok", data=b"not an image")],
                   Provenance("in.jsonl", 1))
    stage = ClipScoreStage(ClipScoreConfig(model="tiny-test", pretrained=None))
    out = OpRunner([Op("stage", stage)], ChainSettings()).run("00000-00000", [doc],
                                                              UnitReport("00000-00000"))
    assert out[0].images[0].status == "clip_undecodable"
    assert (out[0].drop_reason, out[0].dropped_by) == ("no_images", "clip_score")


def test_top_k_keeps_exactly_k_with_repeated_doc_ids_and_ties(ray_session, tmp_path):
    # the same document (same url, so the same doc_id) three times, all tied at the cut
    docs = [mmc4("http://site/top", ["http://i/0.jpg"], quality=0.9)]
    docs += [mmc4("http://site/tied", [f"http://i/t{i}.jpg"], quality=0.5) for i in range(3)]
    docs += [mmc4(f"http://site/low{i}", [f"http://i/l{i}.jpg"], quality=0.1)
             for i in range(3)]
    inputs = write_jsonl(tmp_path / "in.jsonl", docs)
    totals = run([{"clip_topk": {"count": 3, "score": "quality"}}], inputs, tmp_path / "o")
    assert totals["documents_written"] == 3
    assert totals["documents_dropped"] == {"clip_topk:low_clip_score": 4}
    rows = pq.read_table(tmp_path / "o" / "manifest").to_pylist()
    tied = make_doc_id("mmc4", "http://site/tied")
    # ties at the cut go to the earliest records in the input: lines 2 and 3
    assert [r["doc_id"] for r in rows].count(tied) == 2
    assert sorted(r["key"] for r in rows) == ["00000-00000-000000", "00000-00000-000001",
                                              "00000-00000-000002"]


def test_a_data_error_drops_that_document_and_the_run_finishes(ray_session, tmp_path,
                                                               faulty_stage):
    docs = [mmc4(f"http://site/{i}", [f"http://i/{i}.jpg"]) for i in range(8)]
    bad = make_doc_id("mmc4", "http://site/5")
    inputs = write_jsonl(tmp_path / "in.jsonl", docs)
    totals = run([{"faulty": {"doc_ids": [bad], "error": "ValueError"}}], inputs,
                 tmp_path / "out")
    assert totals["documents_dropped"] == {"faulty:stage_error:ValueError": 1}
    assert totals["documents_written"] == 7
    drops = pq.read_table(tmp_path / "out" / "drops").to_pylist()
    assert [(d["doc_id"], d["location"].rsplit(":", 1)[1]) for d in drops] == [(bad, "6")]


@pytest.mark.parametrize("error", ["MemoryError", "CudaError", "OSError"])
def test_an_infrastructure_error_stops_the_run_and_drops_nothing(ray_session, tmp_path,
                                                                 faulty_stage, error):
    docs = [mmc4(f"http://site/{i}", [f"http://i/{i}.jpg"]) for i in range(8)]
    bad = make_doc_id("mmc4", "http://site/5")  # in the second unit
    inputs = write_jsonl(tmp_path / "in.jsonl", docs)
    out = tmp_path / "out"
    with pytest.raises(RunFailed) as err:
        run([{"faulty": {"doc_ids": [bad], "error": error}}], inputs, out)
    assert "stage 'faulty' failed on unit 00000-00001" in str(err.value)
    assert not (out / "stats.json").exists()
    assert not (out / "stats" / "00000-00001.json").exists()
    for part in (out / "stats").glob("*.json"):
        assert json.loads(part.read_text())["documents_dropped"] == {}


def test_too_many_data_errors_stop_the_run(ray_session, tmp_path, faulty_stage):
    docs = [mmc4(f"http://site/{i}", [f"http://i/{i}.jpg"]) for i in range(40)]
    bad = [make_doc_id("mmc4", f"http://site/{i}") for i in range(0, 40, 3)]  # 14 of 40
    inputs = write_jsonl(tmp_path / "in.jsonl", docs)
    with pytest.raises(RunStopped, match=r"stage 'faulty' failed on \d+ of \d+ documents"):
        run([{"faulty": {"doc_ids": bad}}], inputs, tmp_path / "out", max_error_rate=0.05)
    # a generous limit lets the same run finish, every failure recorded
    totals = run([{"faulty": {"doc_ids": bad}}], inputs, tmp_path / "ok",
                 max_error_rate=0.5)
    assert totals["documents_dropped"] == {"faulty:stage_error:ValueError": 14}


def test_changed_inputs_are_refused_and_overwrite_starts_over(ray_session, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [mmc4("http://a/1", ["http://i/a.jpg"])])
    b = write_jsonl(tmp_path / "b.jsonl", [mmc4("http://b/1", ["http://i/b.jpg"]),
                                          mmc4("http://b/2", ["http://i/c.jpg"])])
    out = tmp_path / "out"
    run([], a, out)
    (out / "shards" / "999999.tar").write_bytes(b"old")  # something of the old run
    with pytest.raises(FileExistsError, match="different inputs"):
        run([], b, out)
    cfg = parse_pipeline({"name": "t", "stages": []})
    totals = run_pipeline(cfg, [str(b)], str(out), overwrite=True, progress=lambda _: None)
    assert totals["documents_written"] == 2
    assert not (out / "shards" / "999999.tar").exists()
    assert json.loads((out / "_pipeline.json").read_text())["inputs"] == [str(b)]


def test_stale_shards_of_an_earlier_attempt_are_removed(ray_session, tmp_path):
    docs = [mmc4(f"http://site/{i}", [f"http://i/{i}.jpg"]) for i in range(7)]
    inputs = write_jsonl(tmp_path / "in.jsonl", docs)
    out = tmp_path / "out"
    cfg = parse_pipeline({"name": "t", "stages": [], "writer": {"max_samples": 5}})
    first = run_pipeline(cfg, [str(inputs)], str(out), progress=lambda _: None,
                         keep_work=True)
    assert first["shards"] == 2
    # shards were packed as the pass went: a plan per shard, every piece deleted
    work = out / "_work"
    assert sorted(p.name for p in (work / "shard_plans").iterdir()) == ["000000.json",
                                                                         "000001.json"]
    assert list((work / "pieces").glob("*.tar")) == []
    # an earlier, larger attempt left a third shard and its manifest part behind
    (out / "shards" / "000002.tar").write_bytes((out / "shards" / "000000.tar").read_bytes())
    (out / "manifest" / "000002.parquet").write_bytes(
        (out / "manifest" / "000000.parquet").read_bytes())
    (out / "stats.json").unlink()
    again = run_pipeline(cfg, [str(inputs)], str(out), progress=lambda _: None)
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["000000.tar", "000001.tar"]
    keys = pq.read_table(out / "manifest").column("key").to_pylist()
    assert len(keys) == len(set(keys)) == again["documents_written"] == 7


def test_distributed_fits_decide_as_the_in_task_ones_through_a_run(ray_session, tmp_path):
    """dedup -> image_frequency -> clip_topk with every fit distributed (Ray Data)
    writes exactly what the in-task fits write."""
    docs = []
    for i in range(30):
        body = " ".join(f"w{i if i % 5 else 0}x{k}" for k in range(40))  # 6 exact copies
        images = [f"http://i/{i}.jpg"] + (["http://cdn/logo.png"] if i % 2 else [])
        docs.append(mmc4(f"http://site/{i % 27}", images, quality=round((i * 7) % 10 / 10, 1),
                         text_list=[body, "second"]))
    inputs = write_jsonl(tmp_path / "in.jsonl", docs)
    stages = [{"dedup": {}}, {"image_frequency": {"max_documents": 10, "keys": ["url"]}},
              {"clip_topk": {"count": 9, "score": "quality"}}]
    local = run(stages, inputs, tmp_path / "local")
    spread = run(stages, inputs, tmp_path / "spread", local_fit_max_facts=0)
    for key in ("documents_written", "documents_dropped", "image_status"):
        assert spread[key] == local[key], key
    assert local["documents_written"] == 9
    # urls repeat from doc 27 on (3 URL copies; doc 27 outranks doc 0 by its extra
    # image), then docs 5, 10, 15, 20, 25 share one text: 4 exact copies
    assert local["documents_dropped"]["dedup:duplicate_url"] == 3
    assert local["documents_dropped"]["dedup:duplicate_exact"] == 4
    rows = [pq.read_table(tmp_path / o / "manifest").column("key").to_pylist()
            for o in ("local", "spread")]
    assert rows[0] == rows[1]
    fits = json.loads((tmp_path / "spread" / "stats.json").read_text())["stage_seconds"]
    assert {"dedup.fit", "image_frequency.fit", "clip_topk.fit"} <= set(fits)

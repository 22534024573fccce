"""Funnel counts and consistency checks on a constructed output with known numbers."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
from inspect_builder import EXPECTED, build_output

from curation.cli import main as curate
from curation.inspect.funnel import build_funnel, stage_order
from curation.inspect.load import load_output
from curation.inspect.summary import summarize_output


def steps_by_label(funnel) -> dict:
    return {s.label: s for s in funnel.steps}


def test_totals_and_every_step(constructed_output):
    """The writer's drops.images_with_doc places every image at the step that removed
    it (images that left with their dropped document included)."""
    f = build_funnel(load_output(str(constructed_output)))
    assert f.errors == [] and f.warnings == []
    for key, want in EXPECTED.items():
        assert f.totals[key] == want, key
    assert [(s.label, s.kind, s.documents, s.images) for s in f.steps] == [
        ("input", "input", 9, 13), ("dedup", "dedup", 7, 10),
        ("download", "download", 6, 8), ("image_size", "filter", 5, 7),
        ("text_length", "filter", 4, 5), ("written", "written", 4, 5)]
    s = steps_by_label(f)
    assert s["dedup"].documents_dropped == {"duplicate_exact": 1, "duplicate_url": 1}
    assert s["dedup"].images_dropped == {"with_dropped_documents": 3}
    assert s["download"].images_dropped == {"http_404": 1, "timeout": 1}
    assert s["image_size"].images_dropped == {"too_small": 1}
    assert s["text_length"].images_dropped == {"with_dropped_documents": 2}
    assert s["written"].images_dropped == {}
    assert s["input"].notes["quarantined"] == {"malformed_json": 2}
    assert s["written"].notes["shards"] == 4


def test_without_drop_table_column_images_leave_at_the_end(constructed_output):
    """An output whose drop table lacks images_with_doc (older writers) still adds up:
    images of dropped documents are removed once, at the written step."""
    path = constructed_output / "drops.parquet"
    drops = pq.read_table(path)
    pq.write_table(drops.drop_columns(["images_with_doc"]), path)
    f = build_funnel(load_output(str(constructed_output)))
    assert f.errors == [] and f.warnings == []
    assert [s.images for s in f.steps] == [13, 13, 11, 10, 10, 5]
    s = steps_by_label(f)
    # 3 pending images (dedup-dropped docs) + 2 ok images of the too_short document
    assert s["written"].images_dropped == {"with_dropped_documents": 5}


def test_falls_back_to_unit_parts_without_merged_files(tmp_path):
    out = build_output(tmp_path / "out", finalize=False)
    view = load_output(str(out))
    assert view.sources["manifest"].endswith("manifest/*.parquet")
    assert view.sources["quarantine"] == "_work/quarantine/*.jsonl"
    f = build_funnel(view)
    assert f.errors == []
    assert f.totals["documents_written"] == 4 and f.totals["quarantined"] == {
        "malformed_json": 2}
    assert any("stats.json missing" in w for w in f.warnings)


def test_stage_order_follows_pipeline_then_unknown_stages():
    assert stage_order({"stages": ["b", {"a": {}}]}, {"c:x": 1, "a:y": 1, "None:z": 2}) \
        == ["b", "a", "c"]
    assert stage_order(None, {"z:x": 1, "m:y": 1}) == ["m", "z"]


def _edit_json(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("tamper, message", [
    (lambda o: _edit_json(o / "stats" / "00000-00000.json",
                          lambda d: d.__setitem__("documents_in", 6)),
     "documents_in = 6 but documents_written + sum(documents_dropped) = 5"),
    (lambda o: _edit_json(o / "stats" / "00001-00000.json",
                          lambda d: d["image_status"].__setitem__("ok", 9)),
     "images_in = 4 but sum(image_status) = 11"),
    (lambda o: _edit_json(o / "stats.json", lambda d: d.__setitem__("images_written", 6)),
     "stats.json: images_written = 6"),
    (lambda o: pq.write_table(pq.read_table(o / "manifest.parquet").slice(1),
                              o / "manifest.parquet"),
     "3 rows but stats say 4 documents written"),
    (lambda o: pq.write_table(pq.read_table(o / "drops.parquet").slice(1),
                              o / "drops.parquet"),
     "4 dropped documents; per stats 5"),
    (lambda o: (o / "shards" / "00001-00000-01.tar").unlink(),
     "shards/00001-00000-01.tar: listed in the stats but the file is missing"),
    (lambda o: (o / "quarantine.jsonl").write_text(""), "stats.json: quarantined"),
])
def test_mismatch_is_an_error_and_exit_code(constructed_output, capsys, tamper, message):
    tamper(constructed_output)
    summary = summarize_output(str(constructed_output))
    assert not summary["ok"]
    assert any(message in e for e in summary["errors"]), summary["errors"]
    assert curate(["stats", str(constructed_output)]) == 1
    captured = capsys.readouterr()
    assert "ERROR:" in captured.out and "do not add up" in captured.err


def test_stats_cli_table_json_and_compare(constructed_output, tmp_path, capsys):
    assert curate(["stats", str(constructed_output)]) == 0
    text = capsys.readouterr().out
    assert "counts: OK" in text
    assert "dedup [dedup]" in text and "duplicate_url 1" in text
    assert "quarantined 2 (malformed_json 2)" in text
    assert curate(["stats", str(constructed_output), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["totals"]["documents_written"] == 4
    assert data["distributions"]["all"]["images_per_document"]["counts"] == [3, 1]
    other = tmp_path / "other"
    shutil.copytree(constructed_output, other)
    pq.write_table(pq.read_table(other / "manifest.parquet").slice(1),
                   other / "manifest.parquet")
    assert curate(["stats", str(constructed_output), "--compare", str(other)]) == 1
    text = capsys.readouterr().out
    assert "A docs" in text and "B: ERROR:" in text


def test_missing_output_is_a_clear_error(tmp_path, capsys):
    assert curate(["stats", str(tmp_path / "nope")]) == 2
    assert "no such output folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert curate(["stats", str(tmp_path / "empty")]) == 2
    assert "not a curation output" in capsys.readouterr().err

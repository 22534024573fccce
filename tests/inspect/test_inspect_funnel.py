"""Funnel counts and consistency checks on a constructed output with known numbers."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from inspect_builder import EXPECTED

from curation.cli import main as curate
from curation.inspect.funnel import stage_order
from curation.inspect.load import load_output
from curation.inspect.summary import summarize_output


def steps_by_label(summary) -> dict:
    return {s["label"]: s for s in summary["steps"]}


def test_totals_and_every_step(constructed_output):
    """The writer's drops.images_with_doc places every image at the step that removed
    it (images that left with their dropped document included)."""
    s = summarize_output(str(constructed_output))
    assert s["errors"] == [] and s["warnings"] == [] and s["ok"]
    for key, want in EXPECTED.items():
        assert s["totals"][key] == want, key
    assert s["totals"]["manifest_rows"] == 4 and s["totals"]["units"] == 2
    assert [(x["label"], x["kind"], x["documents"], x["images"]) for x in s["steps"]] == [
        ("input", "input", 9, 13), ("dedup", "dedup", 7, 10),
        ("download", "download", 6, 8), ("image_size", "filter", 5, 7),
        ("text_length", "filter", 4, 5), ("written", "written", 4, 5)]
    by = steps_by_label(s)
    assert by["dedup"]["documents_dropped"] == {"duplicate_exact": 1, "duplicate_url": 1}
    assert by["dedup"]["images_dropped"] == {"with_dropped_documents": 3}
    assert by["download"]["images_dropped"] == {"http_404": 1, "timeout": 1}
    assert by["image_size"]["images_dropped"] == {"too_small": 1}
    assert by["text_length"]["images_dropped"] == {"with_dropped_documents": 2}
    assert by["written"]["images_dropped"] == {}
    assert by["input"]["notes"]["quarantined"] == {"malformed_json": 2}
    assert by["written"]["notes"]["shards"] == 2
    assert s["read_from"]["layout"] == "v2"


def test_without_drop_table_column_images_leave_at_the_end(constructed_output):
    """A drop table without images_with_doc (older writers) still adds up: images of
    dropped documents are removed once, at the written step."""
    for path in (constructed_output / "drops").glob("*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["images_with_doc"]), path)
    s = summarize_output(str(constructed_output))
    assert s["errors"] == [] and s["warnings"] == []
    assert [x["images"] for x in s["steps"]] == [13, 13, 11, 10, 10, 5]
    # 3 pending images (dedup-dropped docs) + 2 ok images of the too_short document
    assert steps_by_label(s)["written"]["images_dropped"] == {"with_dropped_documents": 5}


def test_unfinished_run_is_read_from_its_parts(constructed_output):
    (constructed_output / "stats.json").unlink()
    (constructed_output / "shards.parquet").unlink()
    s = summarize_output(str(constructed_output))
    assert s["errors"] == []
    assert s["totals"]["documents_written"] == 4
    assert s["totals"]["quarantined"] == {"malformed_json": 2}
    assert any("stats.json missing" in w for w in s["warnings"])
    assert any("shards.parquet missing" in w for w in s["warnings"])


def test_stage_order_follows_pipeline_then_unknown_stages():
    assert stage_order({"stages": ["b", {"a": {}}]}, {"c:x": 1, "a:y": 1, "None:z": 2}) \
        == ["b", "a", "c"]
    assert stage_order(None, {"z:x": 1, "m:y": 1}) == ["m", "z"]


def _edit_json(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _rewrite(path, fn):
    pq.write_table(fn(pq.read_table(path)), path)


def _set_column(table, name, values):
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values,
                                                               table.schema.field(i).type))


M0 = "manifest/000000.parquet"
M1 = "manifest/000001.parquet"


@pytest.mark.parametrize("tamper, message", [
    (lambda o: _edit_json(o / "stats" / "00000-00000.json",
                          lambda d: d.__setitem__("documents_in", 6)),
     "stats/00000-00000.json: documents_in = 6 but documents_written + "
     "sum(documents_dropped) = 5"),
    (lambda o: _edit_json(o / "stats" / "00001-00000.json",
                          lambda d: d["image_status"].__setitem__("ok", 9)),
     "stats/00001-00000.json: images_in = 4 but sum(image_status) = 11"),
    (lambda o: _edit_json(o / "stats.json", lambda d: d.__setitem__("images_written", 6)),
     "stats.json: images_written = 6 but the unit stats and files give 5"),
    (lambda o: _rewrite(o / M0, lambda t: t.slice(1)),
     "manifest/*.parquet (2 files): 3 rows but the unit stats say 4"),
    (lambda o: _rewrite(o / M0, lambda t: t.slice(1)),
     "shard 000000.tar: shards.parquet says samples = 3 but the manifest gives 2"),
    (lambda o: _rewrite(o / M0, lambda t: t.slice(1)),
     "1 row(s) of unit 00000-00000 but stats/00000-00000.json says 2 documents written"),
    (lambda o: _rewrite(o / M1, lambda t: _set_column(t, "key", ["00001-00000-000000"])),
     "manifest/000001.parquet: sample key 00001-00000-000000 appears more than once"),
    (lambda o: _rewrite(o / M0, lambda t: _set_column(t, "key", [
        "00000-00000-000001", "00000-00000-000000", "00001-00000-000000"])),
     "manifest/000000.parquet: sample key 00000-00000-000000 comes after "
     "00000-00000-000001"),
    (lambda o: _rewrite(o / M0, lambda t: _set_column(t, "shard", ["000000.tar",
                                                                   "000001.tar",
                                                                   "000000.tar"])),
     "manifest/000000.parquet: a row names shard 000001.tar, not 000000.tar"),
    (lambda o: _rewrite(o / "drops" / "00000-00000.parquet", lambda t: t.slice(1)),
     "drops/*.parquet (2 files): 4 dropped documents; per stats 5; differs at "
     "dedup:duplicate_url (0 vs 1)"),
    (lambda o: _rewrite(o / "dropped" / "00001-00000.parquet", lambda t: t.slice(1)),
     "dropped/00001-00000.parquet: 1 record(s) but stats/00001-00000.json says 2 "
     "documents dropped"),
    (lambda o: (o / "shards" / "000001.tar").unlink(),
     "shards/000001.tar: in shards.parquet but the file is missing"),
    (lambda o: shutil.copy(o / "shards" / "000001.tar", o / "shards" / "000007.tar"),
     "shards/: 1 tar file(s) in no manifest or index (stale?): 000007.tar"),
    (lambda o: (o / "shards" / "000001.tar").write_bytes(b"\0" * 512),
     "shards/000001.tar: 512 bytes but its samples end at byte"),
    (lambda o: (o / "quarantine" / "00000.jsonl").write_text(""),
     "stats.json: quarantined = {'malformed_json': 2} but the unit stats and files give {}"),
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
    _rewrite(other / M0, lambda t: t.slice(1))
    assert curate(["stats", str(constructed_output), "--compare", str(other)]) == 1
    text = capsys.readouterr().out
    assert "A docs" in text and "B: ERROR:" in text


def test_missing_output_is_a_clear_error(tmp_path, capsys):
    assert curate(["stats", str(tmp_path / "nope")]) == 2
    assert "no such output folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert curate(["stats", str(tmp_path / "empty")]) == 2
    assert "not a curation output" in capsys.readouterr().err


def test_view_lists_without_reading(constructed_output):
    view = load_output(str(constructed_output))
    assert view.layout == "v2"
    assert view.manifest_names == [M0, M1]
    assert sorted(view.shard_sizes) == ["000000.tar", "000001.tar"]
    assert [r["samples"] for r in view.shard_index] == [3, 1]

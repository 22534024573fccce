"""The funnel through two runs (lineage) and the stats of a branched output, on outputs
built by write_output with hand-written _pipeline.json files."""

from __future__ import annotations

import json

from inspect_builder import build_branched, build_child, build_output

from curation.cli import main as curate
from curation.inspect.report_html import render_report
from curation.inspect.summary import summarize_output


def rows(steps: list[dict]) -> list[tuple]:
    return [(s["label"], s["documents"], s["images"]) for s in steps]


PARENT_ROWS = [("input", 9, 13), ("dedup", 7, 10), ("download", 6, 8),
               ("image_size", 5, 7), ("text_length", 4, 5), ("written", 4, 5)]


def test_funnel_through_both_runs(tmp_path, capsys):
    parent = build_output(tmp_path / "parent")
    child = build_child(tmp_path / "child", parent)
    s = summarize_output(str(child))
    assert s["ok"], s["errors"]
    # this run alone: the 404 record of mmc4002 was dropped by the parent's download
    assert rows(s["steps"]) == [("input", 4, 6), ("(parent's drops)", 4, 5),
                                ("image_similarity", 2, 2), ("written", 2, 2)]
    assert s["steps"][1]["images_dropped"] == {"download:http_404": 1}
    assert s["steps"][2]["documents_dropped"] == {"no_images": 2}
    assert s["steps"][2]["images_dropped"] == {"low_similarity": 3}
    lin = s["lineage"]
    assert lin["parent"] == str(parent) and lin["read_whole"] is True
    assert (lin["documents_read"], lin["images_read"]) == (4, 5)
    assert [r["name"] for r in lin["runs"]] == ["test", "refilter"]
    assert rows(lin["runs"][0]["steps"]) == PARENT_ROWS
    assert rows(lin["runs"][1]["steps"]) == [
        ("read from test", 4, 6), ("(parent's drops)", 4, 5),
        ("image_similarity", 2, 2), ("written", 2, 2)]
    assert curate(["stats", str(child)]) == 0
    text = capsys.readouterr().out
    assert "FUNNEL THROUGH 2 RUNS" in text and f"run test: {parent}" in text
    assert "read: whole (the parent folder was the input)" in text
    html = render_report(str(child), samples=0)
    # this run's funnel, one per run, the distributions
    assert "Through every run (lineage)" in html and html.count("<table>") == 4


def test_lineage_counts_must_meet(tmp_path):
    """The parent wrote 4 documents; a child that says it ingested 3 is an error."""
    parent = build_output(tmp_path / "parent")
    child = build_child(tmp_path / "child", parent)
    stats = json.loads((child / "stats.json").read_text())
    stats["documents_ingested"] = 3
    (child / "stats.json").write_text(json.dumps(stats))
    s = summarize_output(str(child))
    assert not s["ok"]
    assert f"lineage test -> refilter: {parent} wrote 4 documents but {child} " \
           "ingested 3" in s["errors"]


def test_partial_read_and_changed_parent(tmp_path):
    """One of the parent's two shards read: shown, not compared; a parent rewritten
    with another fingerprint is a warning."""
    parent = build_output(tmp_path / "parent")
    child = build_child(tmp_path / "child", parent,
                        inputs=[str(parent / "shards" / "000000.tar")], fingerprint="dead")
    s = summarize_output(str(child))
    assert s["ok"], s["errors"]
    assert s["lineage"]["read_whole"] is False
    assert s["lineage"]["how"] == "1 of the parent's 2 shards read"
    assert any("now has pipeline fingerprint f00d, not dead" in w for w in s["warnings"])


def test_missing_parent_is_a_warning(tmp_path):
    parent = build_output(tmp_path / "parent")
    child = build_child(tmp_path / "child", parent)
    (parent / "stats.json").unlink()
    s = summarize_output(str(child))
    assert s["ok"] and s["lineage"]["runs"][0]["name"] == "refilter"
    assert any("has no stats.json" in w for w in s["warnings"])


def test_three_runs(tmp_path):
    """A run over a run over a run: the first run's funnel comes first."""
    first = build_output(tmp_path / "first")
    second = build_child(tmp_path / "second", first)
    third = tmp_path / "third"
    build_child(third, second)
    pipe = json.loads((third / "_pipeline.json").read_text())
    pipe["name"] = "again"
    pipe["lineage"]["parent_fingerprint"] = "c0ffee"
    (third / "_pipeline.json").write_text(json.dumps(pipe))
    s = summarize_output(str(third))
    assert [r["name"] for r in s["lineage"]["runs"]] == ["test", "refilter", "again"]
    # the third run re-read the second run's input documents, not its 2 written ones
    assert f"lineage refilter -> again: {second} wrote 2 documents but {third} " \
           "ingested 4" in s["errors"]


def test_branches_are_reported_each(tmp_path, capsys):
    root = build_branched(tmp_path / "run")
    assert curate(["stats", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and sorted(data["branches"]) == ["all", "coyo"]
    a, c = data["branches"]["all"], data["branches"]["coyo"]
    assert (a["totals"]["documents_in"], a["totals"]["documents_written"]) == (9, 4)
    assert (c["totals"]["documents_in"], c["totals"]["documents_written"]) == (4, 2)
    # a branch shares the run's quarantine folder
    assert c["totals"]["quarantined"] == {"malformed_json": 2}
    assert c["read_from"]["quarantine"] == f"{root}/quarantine/*.jsonl"
    assert curate(["stats", str(root)]) == 0
    text = capsys.readouterr().out
    assert "===== branch all" in text and "===== branch coyo" in text
    line = next(x for x in text.splitlines() if x.startswith("coyo "))
    assert line.split() == ["coyo", "2", "2", "OK"]
    assert curate(["show", str(root), "00001-00000-000000"]) == 2
    assert "pass OUTPUT/BRANCH" in capsys.readouterr().err


def test_a_broken_or_missing_branch_fails_the_run(tmp_path, capsys):
    root = build_branched(tmp_path / "run")
    (root / "coyo" / "stats" / "00001-00000.json").unlink()
    assert curate(["stats", str(root)]) == 1
    capsys.readouterr()
    pipe = json.loads((root / "_pipeline.json").read_text())
    pipe["branches"].append("later")
    (root / "_pipeline.json").write_text(json.dumps(pipe))
    assert curate(["stats", str(root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["branches"]["later"]["errors"][0].startswith("branch later: ")

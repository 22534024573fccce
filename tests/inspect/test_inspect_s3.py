"""stats, show and report read an output on s3:// (a real moto_server on loopback)."""

from __future__ import annotations

import json

import s3fs

from curation.cli import main as curate
from curation.inspect.report_html import write_report


def test_stats_show_report_on_s3(constructed_output, s3_bucket, tmp_path, capsys):
    bucket, options = s3_bucket
    fs = s3fs.S3FileSystem(**options)
    fs.put(str(constructed_output), f"{bucket}/out", recursive=True)
    out, opts = f"{bucket}/out", json.dumps(options)
    assert curate(["stats", out, "--json", "--storage-options", opts]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"], data["errors"]
    assert data["totals"]["documents_written"] == 4 and data["totals"]["images_in"] == 13
    assert data["read_from"]["manifest"] == "manifest/*.parquet (2 files)"
    assert data["totals"]["shards"] == 2 and data["totals"]["quarantined"] == {
        "malformed_json": 2}
    assert curate(["show", out, "00001-00000-000000", "--storage-options", opts]) == 0
    assert "<image> a red square photo" in capsys.readouterr().out
    assert curate(["show", out, "00001-00000-000003", "--storage-options", opts]) == 0
    assert "<image> a blue photo" in capsys.readouterr().out
    page = write_report(out, tmp_path / "s3.html", samples=4, seed=0,
                        storage_options=options)
    assert page.read_text().count('alt="0000') == 5

"""Hostile inputs through a real run: each bad record quarantined with its file, line
and reason; the run completes and every good record is written."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline
from tests.conftest import DATA

GOOD = (DATA / "mmc4_readme_example.jsonl").read_bytes().strip()
BAD_LINES = [
    (b'{"text_list": ["a", "b"], "image_info": [', "malformed_json"),
    (b'{"text_list": "one string", "image_info": []}', "wrong_type"),
    (b'{"image_info": [{"raw_url": "http://x/a.jpg"}]}', "missing_field:text_list"),
    (b'{"text_list": [], "image_info": []}', "empty_document"),
    (b'{"text_list": ["x"], "image_info": [{"raw_url": "http://x/a.jpg", '
     b'"matched_text_index": 7}]}', "bad_text_index"),
    (b'{"text_list": ["x"], "image_info": [{"raw_url": "http://x/a.jpg", '
     b'"matched_sim": NaN}]}', "non_finite_number"),
    (b'{"text_list": ["x"], "text_list": ["y"]}', "duplicate_key"),
    (b'{"text_list": ["\xff\xfe bytes"]}', "not_utf8"),
    (json.dumps({"text_list": ["x"], "image_info": [{"raw_url": f"http://x/{i}.jpg"}
                                                    for i in range(5000)]}).encode(),
     "too_many_images"),
    (b'{"text_list": ["' + b"w" * (9 * 1024 * 1024) + b'"]}', "line_too_long"),
    (b'{"text_list": ["x"], "image_info": [{"matched_text_index": 0}]}',
     "missing_field:raw_url"),
]


def test_hostile_inputs_are_quarantined_and_the_run_completes(ray_session, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    lines = [GOOD]
    for line, _ in BAD_LINES:
        lines += [line, GOOD]
    (inputs / "docs.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    pq.write_table(pa.table({"id": [1, 2], "caption": ["a", "b"]}),
                   inputs / "no_url.parquet")
    (inputs / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    pipeline = parse_pipeline({"name": "hostile", "stages": []})
    totals = run_pipeline(pipeline, [str(inputs)], str(tmp_path / "out"),
                          progress=lambda _: None)

    n_good = len(BAD_LINES) + 1
    assert totals["documents_ingested"] == totals["documents_written"] == n_good
    want = Counter(reason for _, reason in BAD_LINES)
    want.update({"missing_column:url": 1, "unreadable_parquet": 1})
    assert totals["quarantined"] == dict(want)
    parts = sorted((tmp_path / "out" / "quarantine").glob("*.jsonl"))
    records = [json.loads(line) for part in parts for line in part.read_text().splitlines()]
    by_reason = {r["reason"]: r for r in records if r["file"].endswith("docs.jsonl")}
    for i, (_, reason) in enumerate(BAD_LINES):
        assert by_reason[reason]["line"] == 2 * i + 2, reason
    assert sum(len(p.read_bytes()) for p in parts) < 100_000

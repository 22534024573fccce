"""`curate dedup` end to end: kept records written unchanged per input file, duplicates
per file, the same removals as the in-process fit over the same records."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.cli import main as curate
from curation.decisions import facts_table
from curation.dedup.stage import DedupStage
from curation.dedup.synthetic import load_sentences, make_corpus
from curation.ingest.reader import read_input
from curation.pipeline_config import IngestConfig
from tests.conftest import DATA


@pytest.fixture(scope="module")
def corpus():
    sentences = load_sentences(str(DATA / "laion_test_1000.parquet"))
    return make_corpus(sentences, 240, dup_fraction=0.4, seed=11)


def _write_inputs(tmp_path, corpus) -> list:
    files = []
    for f in range(3):
        path = tmp_path / "in" / f"part-{f}.jsonl"
        path.parent.mkdir(exist_ok=True)
        with open(path, "w") as fh:
            for i, d in enumerate(corpus[f * 80:(f + 1) * 80]):
                # 1 in 9 shares its page URL with another document
                url = f"http://site{(f * 80 + i) % 220}.com/p"
                fh.write(json.dumps({"url": url, "text_list": [d.text], "image_info": []})
                         + "\n")
                if f == 1 and i == 5:
                    fh.write("{not json\n\n")  # a bad record and a blank line
        files.append(path)
    return files


def _expected(files) -> set[tuple[str, str]]:
    """(location, duplicate_of) of the in-process fit over the same records."""
    stage = DedupStage(DedupStage.Config(threshold=0.75))
    tables, locations = [], {}
    for index, path in enumerate(files):
        recs = [r for r in read_input(str(path), IngestConfig()) if hasattr(r, "doc_id")]
        rids = [(index << 40) + i for i in range(len(recs))]
        locations.update({rid: r.provenance.location() for rid, r in zip(rids, recs)})
        tables.append(facts_table(stage, f"{index:05d}", rids,
                                  stage.collect(recs)))
    rows = stage.fit(pa.concat_tables(tables)).rows.to_pylist()
    return {(locations[r["rid"]], r["duplicate_of"]) for r in rows}


def test_curate_dedup_command(ray_session, corpus, tmp_path, capsys):
    files = _write_inputs(tmp_path, corpus)
    out = tmp_path / "out"
    rc = curate(["dedup", "-i", str(tmp_path / "in"), "-o", str(out), "--threshold", "0.75",
                 "--json"])
    assert rc == 0
    import ray

    assert ray.is_initialized()  # the command leaves a session it did not start running
    stats = json.loads(capsys.readouterr().out)
    dups = pq.read_table(out / "duplicates").to_pylist()
    kept_lines = [line for f in sorted((out / "documents").iterdir())
                  for line in f.read_text().splitlines()]
    assert stats["documents_in"] == 240 and stats["quarantined"] == 1
    assert stats["removed"] == len(dups) > 20
    assert stats["kept"] == len(kept_lines) == 240 - len(dups)
    assert sum(stats["removed_by_method"].values()) == len(dups)
    assert {"url", "minhash"} <= set(stats["removed_by_method"])
    # kept records are the input lines, unchanged, in input order
    inputs = [line for f in files for line in f.read_text().splitlines()
              if line.startswith('{"url"')]
    removed = {d["location"] for d in dups}
    assert kept_lines == [line for f in files for i, line in enumerate(
        f.read_text().splitlines(), start=1)
        if line.startswith('{"url"') and f"{f}:{i}" not in removed]
    assert len(inputs) == 240
    assert {(d["location"], d["duplicate_of"]) for d in dups} == _expected(files)
    bad = [json.loads(line) for line in (out / "quarantine" / "00001.jsonl").open()]
    assert [b["reason"] for b in bad] == ["malformed_json"]
    assert stats["config"]["threshold"] == 0.75
    assert curate(["dedup", "-i", str(tmp_path / "in"), "-o", str(out)]) == 2  # exists
    (out / "documents" / "99999.jsonl").write_text("stale\n")
    assert curate(["dedup", "-i", str(files[0]), "-o", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "documents").iterdir()) == ["00000.jsonl"]

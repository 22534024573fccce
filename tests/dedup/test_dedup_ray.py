"""The Ray Data job gives the in-process answer, and `curate dedup` runs end to end."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from curation.cli import main as curate
from curation.dedup.facts import FactTable, compute_facts
from curation.dedup.finder import find_duplicates
from curation.dedup.params import DedupConfig
from curation.dedup.synthetic import load_sentences, make_corpus
from curation.document import Document, Provenance
from tests.conftest import DATA


def _key(d):
    return d["doc_id"], d["location"]


@pytest.fixture(scope="module")
def docs():
    sentences = load_sentences(str(DATA / "laion_test_1000.parquet"))
    synth = make_corpus(sentences, 300, dup_fraction=0.4, seed=11)
    out = [Document(d.doc_id, "mmc4", f"http://site{i % 250}.com/p", [d.text], [],
                    Provenance("mem", i + 1)) for i, d in enumerate(synth)]
    return out  # 50 URL duplicates on top of the planted near-duplicates


def test_distributed_equals_local(ray_session, docs):
    from curation.runner.dedup_job import find_duplicates_distributed

    cfg = DedupConfig()
    facts = compute_facts(docs, cfg)
    local = find_duplicates(FactTable.from_records(facts, cfg.num_perm), cfg)
    dist = find_duplicates_distributed(facts, cfg)
    assert {d["method"] for d in local} == {"url", "minhash", "exact"} or \
        {d["method"] for d in local} >= {"url", "minhash"}
    assert sorted(dist, key=_key) == sorted(local, key=_key)


def test_curate_dedup_command(ray_session, docs, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    with open(src, "w") as f:
        for d in docs[:120]:
            f.write(json.dumps({"url": d.url, "text_list": d.texts, "image_info": []}) + "\n")
        f.write("{not json\n")
    out = tmp_path / "out"
    rc = curate(["dedup", "-i", str(src), "-o", str(out), "--threshold", "0.75", "--json"])
    assert rc == 0
    stats = json.loads(capsys.readouterr().out)
    dups = pq.read_table(out / "duplicates.parquet").to_pylist()
    kept = [json.loads(line) for line in open(out / "documents" / "00000.jsonl")]
    assert stats["documents_in"] == 120 and stats["quarantined"] == 1
    assert stats["removed"] == len(dups) > 0 and stats["kept"] == len(kept) == 120 - len(dups)
    assert sum(stats["removed_by_method"].values()) == len(dups)
    kept_ids = {d["doc_id"] for d in kept}
    assert all(d["duplicate_of"] in kept_ids and d["doc_id"] not in kept_ids for d in dups)
    assert set(pq.read_schema(out / "duplicates.parquet").names) >= {
        "doc_id", "duplicate_of", "method", "similarity"}
    assert stats["config"]["threshold"] == 0.75
    assert curate(["dedup", "-i", str(src), "-o", str(out)]) == 2  # refuses to overwrite

"""End to end on a real local Ray against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from curation.demo.corpus import DATA, write_coyo_parquet, write_mmc4_jsonl
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline

PIPELINE = {
    "name": "e2e",
    "ingest": {"docs_per_unit": 8},
    "stages": [{"download": {"allow_hosts": ["127.0.0.1"]}}],
    "writer": {"max_samples": 10},
}


@pytest.fixture
def corpus(tmp_path, static_server):
    server = static_server(DATA)
    inputs = tmp_path / "in"
    inputs.mkdir()
    n_docs = write_mmc4_jsonl(inputs / "docs.jsonl", server.base_url)
    n_pairs = write_coyo_parquet(inputs / "pairs.parquet", server.base_url)
    return inputs, n_docs + n_pairs


def shard_digests(out):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "shards").glob("*.tar"))}


def test_pipeline_writes_readable_shards_and_exact_counts(ray_session, corpus, tmp_path):
    inputs, n_in = corpus
    out = tmp_path / "out"
    logs: list[str] = []
    totals = run_pipeline(parse_pipeline(PIPELINE), [str(inputs)], str(out),
                          progress=logs.append)
    assert any(line.startswith("pass 0 ") for line in logs)
    assert not (out / "_work").exists()  # staging is removed after success

    # Everything that went in is written or recorded as dropped / quarantined.
    assert totals["documents_ingested"] == n_in
    assert totals["quarantined"] == {"malformed_json": 1}
    assert totals["documents_written"] + sum(totals["documents_dropped"].values()) == n_in
    assert totals["images_in"] == sum(totals["image_status"].values())
    assert totals["image_status"]["http_404"] == 4  # the planted dead links
    assert totals["documents_dropped"] == {"download:no_images": 2}

    samples = list(wds.WebDataset(sorted(str(p) for p in (out / "shards").glob("*.tar")),
                                  shardshuffle=False))
    assert len(samples) == totals["documents_written"]
    n_images = 0
    for s in samples:
        rec = json.loads(s["json"])
        for im in rec["images"]:
            if im["member"]:
                with Image.open(io.BytesIO(s[im["member"]])) as img:
                    img.load()
                    assert img.size == (im["width"], im["height"])
                n_images += 1
    assert n_images == totals["images_written"]
    manifest = pq.read_table(out / "manifest")
    assert manifest.num_rows == totals["documents_written"]
    assert sorted(manifest.column("key").to_pylist()) == sorted(s["__key__"] for s in samples)
    drops = pq.read_table(out / "drops").to_pylist()
    assert {d["reason"] for d in drops} == {"no_images"}
    bad = [json.loads(line) for part in sorted((out / "quarantine").glob("*.jsonl"))
           for line in part.read_text().splitlines()]
    assert bad[0]["reason"] == "malformed_json" and bad[0]["line"] == 21

    # Shards are filled across units: every shard but the last holds max_samples.
    index = pq.read_table(out / "shards.parquet").to_pylist()
    assert [r["samples"] for r in index[:-1]] == [10] * (len(index) - 1)
    assert sum(r["samples"] for r in index) == totals["documents_written"]
    assert [r["shard"] for r in index] == [f"{i:06d}.tar" for i in range(len(index))]

    # Same command again: nothing is redone, shards are byte-identical.
    before = shard_digests(out)
    logs.clear()
    again = run_pipeline(parse_pipeline(PIPELINE), [str(inputs)], str(out),
                         progress=logs.append)
    assert shard_digests(out) == before
    assert not any(line.startswith("pass ") for line in logs)
    assert again["documents_written"] == totals["documents_written"]

    # A changed config refuses to reuse the output unless told to overwrite.
    changed = dict(PIPELINE, writer={"max_samples": 3})
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_pipeline(parse_pipeline(changed), [str(inputs)], str(out))
    redo = run_pipeline(parse_pipeline(changed), [str(inputs)], str(out), overwrite=True)
    assert redo["documents_written"] == totals["documents_written"]
    assert redo["shards"] > totals["shards"]

"""Inputs read from and outputs written to s3:// on a real moto_server (loopback)."""

from __future__ import annotations

import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import s3fs

from curation.cli import main as curate
from curation.demo.corpus import DATA, write_coyo_parquet, write_mmc4_jsonl
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline
from trainer_bridge import ShardDataset

PIPELINE = {"name": "s3", "ingest": {"docs_per_unit": 16},
            "stages": [{"download": {"allow_hosts": ["127.0.0.1"]}}]}


def test_pipeline_reads_and_writes_s3(ray_session, s3_bucket, static_server, tmp_path,
                                      capsys):
    bucket, options = s3_bucket
    server = static_server(DATA)
    write_mmc4_jsonl(tmp_path / "docs.jsonl", server.base_url)
    n_pairs = write_coyo_parquet(tmp_path / "pairs.parquet", server.base_url)
    fs = s3fs.S3FileSystem(**options)
    fs.put(str(tmp_path / "docs.jsonl"), f"{bucket}/in/docs.jsonl")
    fs.put(str(tmp_path / "pairs.parquet"), f"{bucket}/in/pairs.parquet")

    out = f"{bucket}/out"
    totals = run_pipeline(parse_pipeline(PIPELINE), [f"{bucket}/in/*"], out,
                          storage_options=options, progress=lambda _: None)
    assert totals["inputs"] == [f"{bucket}/in/docs.jsonl", f"{bucket}/in/pairs.parquet"]
    assert totals["documents_ingested"] == 38 + n_pairs
    assert totals["documents_written"] + sum(totals["documents_dropped"].values()) == \
        totals["documents_ingested"]

    fs.invalidate_cache()
    shards = sorted(fs.glob(f"{bucket}/out/shards/*.tar"))
    assert len(shards) == totals["shards"] and not fs.glob(f"{bucket}/out/**/*.tmp-*")
    parts = sorted(fs.glob(f"{bucket}/out/manifest/*.parquet"))
    assert len(parts) == len(shards)
    manifest = pa.concat_tables([pq.read_table(pa.py_buffer(fs.cat_file(p))) for p in parts])
    assert manifest.num_rows == totals["documents_written"]
    keys = []
    for shard in shards:
        with fs.open(shard, "rb") as f, tarfile.open(fileobj=f) as tf:
            for member in tf.getmembers():
                key, _, ext = member.name.partition(".")
                if ext == "json":
                    keys.append(key)
                    assert json.loads(tf.extractfile(member).read())["doc_id"]
    assert sorted(keys) == sorted(manifest.column("key").to_pylist())
    with fs.open(f"{bucket}/out/stats.json", "rb") as f:
        assert json.load(f)["documents_written"] == totals["documents_written"]

    # Read back the way users do: `curate stats` and the trainer bridge, both on s3://.
    code = curate(["stats", out, "--json", "--storage-options", json.dumps(options)])
    assert code == 0
    assert '"documents_written": %d' % totals["documents_written"] in capsys.readouterr().out
    ds = ShardDataset(out, storage_options=options, shuffle=False, rank=0, world_size=1)
    streamed = [json.loads(s["json"])["doc_id"] for s in ds]
    assert sorted(streamed) == sorted(manifest.column("doc_id").to_pylist())

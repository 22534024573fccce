"""--retry-failed re-fetches only retryable failures and rewrites only their units."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from curation.demo.corpus import DATA
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline
from tests.support.servers import FlakyServer

PIPELINE = {"name": "retry", "ingest": {"docs_per_unit": 4},
            "stages": [{"download": {"allow_hosts": ["127.0.0.1"]}}]}


def doc(i: int, base: str, names: list[str]) -> dict:
    return {"url": f"https://example.org/{i}", "text_list": [f"sentence {j}" for j in
                                                             range(len(names))],
            "image_info": [{"raw_url": f"{base}/{n}", "matched_text_index": j}
                           for j, n in enumerate(names)]}


def test_retry_failed_refetches_only_retryable_images(ray_session, tmp_path):
    images = sorted(p.name for p in (DATA / "images").glob("*.jpg"))
    with FlakyServer(DATA / "images") as server:
        base = server.base_url
        docs = [doc(i, base, [images[i % 24], images[(i + 5) % 24]]) for i in range(12)]
        docs[1]["image_info"][1]["raw_url"] = f"{base}/flaky-{images[0]}"   # unit 0
        docs[2]["image_info"] = [{"raw_url": f"{base}/flaky-{images[1]}"},   # unit 0: doc
                                 {"raw_url": f"{base}/gone.jpg"}]          # dropped
        docs[2]["text_list"].append("another sentence")
        docs[5]["image_info"][0]["raw_url"] = f"{base}/missing.jpg"         # unit 1: 404
        (tmp_path / "in.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
        out = tmp_path / "out"
        cfg = parse_pipeline(PIPELINE)
        first = run_pipeline(cfg, [str(tmp_path / "in.jsonl")], str(out),
                             progress=lambda _: None)
        assert first["documents_dropped"] == {"download:no_images": 1}
        failed = {k: v for k, v in first["image_status"].items() if k != "ok"}
        assert sum(failed.values()) == 4 and failed.get("http_404") == 2
        mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}
        manifest = pq.read_table(out / "manifest").to_pylist()
        holding_unit0 = {r["shard"] for r in manifest if r["unit"] == "00000-00000"}

        server.broken = False
        server.requests.clear()
        again = run_pipeline(cfg, [str(tmp_path / "in.jsonl")], str(out),
                             progress=lambda _: None, retry_failed=True)
        assert sorted(server.requests) == sorted(
            [f"/flaky-{images[0]}", f"/flaky-{images[1]}"])
    assert again["image_status"] == {"ok": first["image_status"]["ok"] + 2, "http_404": 2}
    assert again["documents_dropped"] == {}
    assert again["documents_written"] == first["documents_written"] + 1
    after = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}
    kept = {n for n in after if mtimes.get(n) == after[n]}
    # only the shards that held unit 0's samples were rewritten (as new shards after
    # the last one); every other shard is untouched
    assert set(mtimes) - kept == holding_unit0 and holding_unit0
    assert all(int(n[:6]) >= len(mtimes) for n in set(after) - kept)
    rows = pq.read_table(out / "manifest").to_pylist()
    assert len(rows) == len({r["key"] for r in rows}) == again["documents_written"]
    assert not (out / "_work").exists()

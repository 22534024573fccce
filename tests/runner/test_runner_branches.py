"""Branched pipelines: the trunk runs once (every image fetched once), each branch
writes its own output, and a branch killed mid-way resumes on its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from curation.demo.corpus import DATA
from curation.document import make_doc_id
from curation.pipeline_config import load_pipeline, parse_pipeline
from tests.conftest import REPO
from tests.support.servers import FlakyServer

IMAGES = sorted(p.name for p in (DATA / "images").glob("*.jpg"))
PIPELINE = {
    "name": "branches", "ingest": {"docs_per_unit": 1},
    "stages": [{"download": {"allow_hosts": ["127.0.0.1"]}}],
    "branches": {"all": {}, "two_images": {"stages": [
        {"doc_counts": {"min_images": 2, "max_images": None, "min_sentences": 1,
                        "max_sentences": None}}]}},
    "writer": {"max_samples": 4},
}


def corpus(path: Path, base: str) -> tuple[set[str], set[str]]:
    """16 documents of two images; every third has a dead second link. Returns the
    doc_ids expected in each branch."""
    lines, all_ids, two = [], set(), set()
    for i in range(16):
        second = f"{base}/missing-{i}.jpg" if i % 3 == 0 else \
            f"{base}/{IMAGES[(i + 7) % len(IMAGES)]}?d={i}"
        url = f"http://site/{i}"
        lines.append(json.dumps({"url": url, "text_list": ["one", "two"], "image_info": [
            {"raw_url": f"{base}/{IMAGES[i % len(IMAGES)]}?d={i}"}, {"raw_url": second}]}))
        all_ids.add(make_doc_id("mmc4", url))
        if i % 3:
            two.add(make_doc_id("mmc4", url))
    path.write_text("\n".join(lines) + "\n")
    return all_ids, two


def doc_ids(out: Path) -> set[str]:
    return set(pq.read_table(out / "manifest").column("doc_id").to_pylist())


def test_trunk_runs_once_and_each_branch_resumes_on_its_own(ray_session, tmp_path):
    import ray

    address = ray.get_runtime_context().gcs_address
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(PIPELINE))
    out = tmp_path / "out"
    with FlakyServer(DATA / "images") as server:
        server.broken = False
        expect_all, expect_two = corpus(tmp_path / "in.jsonl", server.base_url)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "curation.cli", "run", str(tmp_path / "p.yaml"), "-i",
             str(tmp_path / "in.jsonl"), "-o", str(out), "--address", address],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        stats = out / "two_images" / "stats"
        while proc.poll() is None and time.time() < deadline:
            if stats.exists() and len(list(stats.glob("*.json"))) >= 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before the kill"
        assert (out / "all" / "stats.json").exists()  # the first branch was complete
        first_branch = (out / "all" / "stats.json").stat().st_mtime_ns
        fetched = list(server.requests)
        assert len(fetched) == len(set(fetched)) == 32  # the trunk fetched every image once
        server.requests.clear()

        cfg = load_pipeline(tmp_path / "p.yaml")
        from curation.runner.pipeline import run_pipeline

        run_pipeline(cfg, [str(tmp_path / "in.jsonl")], str(out), progress=lambda _: None)
        assert server.requests == []  # the trunk was not run again
    assert (out / "all" / "stats.json").stat().st_mtime_ns == first_branch
    assert doc_ids(out / "all") == expect_all
    assert doc_ids(out / "two_images") == expect_two
    two = json.loads((out / "two_images" / "stats.json").read_text())
    assert two["documents_dropped"] == {"doc_counts:too_few_images": 16 - len(expect_two)}
    assert two["documents_ingested"] == 16
    assert not (out / "_work").exists() and not (out / "two_images" / "_work").exists()
    root = json.loads((out / "_pipeline.json").read_text())
    assert root["branches"] == ["all", "two_images"]
    assert json.loads((out / "two_images" / "_pipeline.json").read_text())["branch"] == \
        "two_images"


def test_branch_names_are_checked():
    import pytest

    from curation.pipeline_config import PipelineConfigError

    with pytest.raises(PipelineConfigError, match="reserved output folder"):
        parse_pipeline({"stages": [], "branches": {"shards": {}}})
    with pytest.raises(PipelineConfigError, match="only stages and writer"):
        parse_pipeline({"stages": [], "branches": {"a": {"stagez": []}}})
    cfg = load_pipeline(REPO / "pipelines" / "mmc4_all.yaml")
    assert [b.name for b in cfg.branches] == ["mmc4", "mmc4_core"]
    assert cfg.branch_fingerprint(cfg.branches[0]) != cfg.branch_fingerprint(cfg.branches[1])

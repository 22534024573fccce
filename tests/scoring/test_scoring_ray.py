"""clip_score inside a real Ray pipeline: download from 127.0.0.1, score on a CPU
actor pool (tiny model, saved weights), cut by similarity, then a global top-k."""

from __future__ import annotations

import json
import math

import open_clip
import torch
import webdataset as wds

from curation.demo.corpus import DATA, write_coyo_parquet, write_mmc4_jsonl
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline
from curation.scoring.model import TINY_MODEL, write_tiny_config

MIN_SIM = 0.0


def pipeline(config_dir, weights) -> dict:
    return {
        "name": "clip-e2e",
        "ingest": {"docs_per_unit": 16},
        "stages": [
            {"download": {"allow_hosts": ["127.0.0.1"], "timeout_s": 10}},
            {"clip_score": {"model": TINY_MODEL, "pretrained": str(weights),
                            "model_config_dir": str(config_dir), "batch_size": 8,
                            "device": "cpu", "num_cpus": 1}},
            {"image_similarity": {"min_similarity": MIN_SIM}},
            {"clip_topk": {"fraction": 0.5}},
        ],
        "writer": {"max_samples": 50},
    }


def test_clip_pipeline_on_ray(ray_session, static_server, tmp_path):
    server = static_server(DATA)
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_mmc4_jsonl(inputs / "docs.jsonl", server.base_url)
    write_coyo_parquet(inputs / "pairs.parquet", server.base_url)
    write_tiny_config(tmp_path / "cfg")
    torch.manual_seed(0)
    torch.save(open_clip.create_model(TINY_MODEL).state_dict(), tmp_path / "tiny.pt")

    out = tmp_path / "out"
    totals = run_pipeline(parse_pipeline(pipeline(tmp_path / "cfg", tmp_path / "tiny.pt")),
                          [str(inputs)], str(out), progress=lambda _: None)

    samples = list(wds.WebDataset(sorted(str(p) for p in (out / "shards").glob("*.tar")),
                                  shardshuffle=False))
    assert len(samples) == totals["documents_written"] > 0
    low = 0
    for s in samples:
        rec = json.loads(s["json"])
        for n, im in enumerate(rec["images"]):
            if im["status"] == "ok":
                assert len(im["similarities"]) == len(rec["texts"])
                assert max(im["similarities"]) >= MIN_SIM
                j = im["matched_text_index"]
                assert im["matched_sim"] == im["similarities"][j]
                assert rec["similarity_matrix"][n] == im["similarities"]
            elif im["status"] == "low_similarity":
                assert im["dropped_by"] == "image_similarity"
                assert max(im["similarities"]) < MIN_SIM
                low += 1
    # the seeded tiny model cuts some images; documents left empty are recorded
    assert 0 < low <= totals["image_status"]["low_similarity"]
    assert totals["documents_dropped"]["image_similarity:no_images"] > 0
    # Global top half of the scored documents, over all units together.
    dropped = totals["documents_dropped"]
    cut = dropped.get("clip_topk:low_clip_score", 0)
    scored = totals["documents_written"] + cut
    assert cut > 0 and totals["documents_written"] == math.ceil(0.5 * scored)

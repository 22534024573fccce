"""clip_score inside a real Ray pipeline: download from 127.0.0.1, score on a CPU
actor pool (tiny model, saved weights), cut by similarity, then a global top-k; and
GPU actor pools sized from the cluster (two logical GPUs, model on the CPU)."""

from __future__ import annotations

import json
import math
import sys

import open_clip
import pytest
import torch
import webdataset as wds

from curation.demo.corpus import DATA, write_coyo_parquet, write_mmc4_jsonl
from curation.pipeline_config import parse_pipeline
from curation.registry import STAGES
from curation.runner.passes import actor_pool_bounds
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


def test_actor_pool_bounds_from_cluster():
    cluster = {"GPU": 8.0, "CPU": 96.0}
    assert actor_pool_bounds(1, 8, None, cluster) == (1, 8)  # one actor per GPU
    assert actor_pool_bounds(0.5, 4, None, cluster) == (1, 16)  # two per GPU
    assert actor_pool_bounds(1, 16, None, cluster) == (1, 5)  # CPUs run out first
    assert actor_pool_bounds(1, 8, 3, cluster) == (3, 3)  # pinned
    assert actor_pool_bounds(0, 2, None, cluster) == (1, 1)  # CPU actors: one
    with pytest.raises(ValueError, match="cluster has 0"):
        actor_pool_bounds(1, 1, None, {"CPU": 4.0})


def test_gpu_pool_uses_every_gpu_of_the_cluster(ray_session, static_server, tmp_path,
                                                 monkeypatch):
    """The session's Ray has 2 logical GPUs and no CUDA: two actors, one GPU each,
    both scoring (on the CPU)."""
    import ray
    from ray import cloudpickle

    from tests.scoring import clip_probe

    assert ray.cluster_resources().get("GPU") == 2
    cloudpickle.register_pickle_by_value(sys.modules[clip_probe.__name__])
    monkeypatch.setitem(STAGES, "clip_probe", f"{clip_probe.__name__}:ClipProbeStage")
    server = static_server(DATA)
    inputs = tmp_path / "in"
    inputs.mkdir()
    n_rows = write_coyo_parquet(inputs / "pairs.parquet", server.base_url)
    (tmp_path / "barrier").mkdir()
    config = parse_pipeline({
        "name": "clip-gpus",
        "ingest": {"docs_per_unit": 2},
        "stages": [
            {"download": {"allow_hosts": ["127.0.0.1"], "timeout_s": 10}},
            {"clip_probe": {"model": TINY_MODEL, "pretrained": None, "batch_size": 4,
                            "num_gpus": 1, "num_cpus": 0.5,
                            "barrier_dir": str(tmp_path / "barrier")}},
        ],
    })
    totals = run_pipeline(config, [str(inputs)], str(tmp_path / "out"),
                          progress=lambda _: None)
    assert math.ceil(n_rows / 2) > 4  # more units than one actor takes in flight (2 x 2)
    probes = []
    for s in wds.WebDataset(sorted(str(p) for p in (tmp_path / "out" / "shards")
                                   .glob("*.tar")), shardshuffle=False):
        rec = json.loads(s["json"])
        probes.append(rec["metadata"]["probe"])
    assert len(probes) == totals["documents_written"] > 0
    assert {p["device"] for p in probes} == {"cpu"}  # no CUDA: CPU fallback
    actors = {p.name: p.read_text() for p in (tmp_path / "barrier").iterdir()}
    assert sorted(actors.values()) == ["0", "1"]  # two actors, each holding its own GPU
    by_pid = {p["pid"]: p["gpus"] for p in probes}
    assert len(by_pid) == 2  # and both scored (units do not queue behind a busy actor)

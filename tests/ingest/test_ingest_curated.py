"""A curate output as the input of another run: re-filtering stored scores without
recomputing anything, lineage recorded, image bytes carried over unchanged."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest
from PIL import Image

from curation.document import IMAGE_OK, Document, ImageRecord, Provenance
from curation.ingest.files import expand_inputs
from curation.pipeline_config import parse_pipeline
from curation.runner.pipeline import run_pipeline
from shards.local import write_output
from shards.pack import ShardLimits

SIMS = [[0.31, 0.12], [0.18, 0.19], [0.05, 0.11], [0.16, 0.1], [0.25, 0.3], [0.11, 0.02]]


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (seed * 40 % 256, 90, 10)).save(buf, "JPEG")
    return buf.getvalue()


def parent_output(tmp_path):
    """Two units of scored documents (each image's similarity to each sentence)."""
    units = {}
    for u in range(2):
        docs = []
        for k in range(6):
            i = 6 * u + k
            images = []
            for j in range(2):
                sims = [SIMS[(i + j) % 6][0], SIMS[(i + j) % 6][1]]
                im = ImageRecord(f"http://h/{i}/{j}.jpg", status=IMAGE_OK, data=jpeg(i + j),
                                 mime="image/jpeg", similarities=sims,
                                 matched_text_index=j, matched_sim=sims[j])
                images.append(im)
            docs.append(Document(f"d{i:03d}", "mmc4", f"http://s/{i}", ["one.", "two."],
                                 images, Provenance("orig.jsonl", i + 1),
                                 metadata={"kept": "as is"}))
        docs[5].drop("duplicate_exact", "dedup")  # dropped earlier: never read again
        units[f"00000-{u:05d}"] = docs
    out = tmp_path / "parent"
    write_output(units, str(out), ShardLimits(max_samples=4))
    (out / "_pipeline.json").write_text(json.dumps(
        {"name": "parent", "fingerprint": "abc123", "stages": ["dedup", "clip_score"]}))
    return out


def expected_kept(parent, threshold: float) -> set[str]:
    """Independently, from the shards' JSON: documents with an image whose best
    similarity reaches the threshold."""
    kept = set()
    for shard in sorted((parent / "shards").glob("*.tar")):
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".json"):
                    rec = json.loads(tf.extractfile(m).read())
                    if any(max(im["similarities"]) >= threshold for im in rec["images"]):
                        kept.add(rec["doc_id"])
    return kept


def test_refilter_a_curated_output_at_a_new_threshold(ray_session, tmp_path):
    parent = parent_output(tmp_path)
    assert expand_inputs([str(parent)]) == sorted(str(p) for p in
                                                  (parent / "shards").glob("*.tar"))
    cfg = parse_pipeline({"name": "refilter",
                          "stages": [{"image_similarity": {"min_similarity": 0.2}}]})
    out = tmp_path / "child"
    totals = run_pipeline(cfg, [str(parent)], str(out), progress=lambda _: None)
    want = expected_kept(parent, 0.2)
    rows = pq.read_table(out / "manifest").to_pylist()
    assert {r["doc_id"] for r in rows} == want and 0 < len(want) < 10
    assert totals["documents_ingested"] == 10  # the 2 dropped earlier are not read again
    assert totals["documents_written"] + sum(totals["documents_dropped"].values()) == 10
    lineage = json.loads((out / "_pipeline.json").read_text())["lineage"]
    assert lineage["parent"] == str(parent) and lineage["parent_fingerprint"] == "abc123"
    assert lineage["read_whole"] is True
    # image bytes and metadata travel unchanged; provenance still names the original
    with tarfile.open(sorted((out / "shards").glob("*.tar"))[0]) as tf:
        members = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
    rec = json.loads(next(v for k, v in members.items() if k.endswith(".json")))
    i = int(rec["doc_id"][1:])
    kept = [im for im in rec["images"] if im["member"]]
    assert kept
    first = next(k for k in members if k.endswith(kept[0]["member"]))
    j = int(kept[0]["url"].rsplit("/", 1)[1][0])
    assert members[first] == jpeg(i + j)
    assert rec["metadata"] == {"kept": "as is"}
    assert rec["provenance"]["file"] == "orig.jsonl"


def test_tar_globs_and_folders_that_are_not_outputs(tmp_path):
    parent = parent_output(tmp_path)
    shards = expand_inputs([str(parent / "shards" / "*.tar")])
    assert len(shards) == 3
    holder = tmp_path / "holder"
    holder.mkdir()
    (holder / "docs.jsonl").write_text("{}\n")
    parent.rename(holder / "run")
    with pytest.raises(ValueError, match="holds curate output folder"):
        expand_inputs([str(holder)])

"""`curate export vila`: the layouts VILA's loaders read, read back the way they read them.

The readers below follow VILA's LazyMMC4Dataset / LazyCoyoDataset (count the folder's
files, sort the .count names, load the matching pickles) and its wids-meta index."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import tarfile

import pytest
from bridge_builder import build_output, build_pairs, color, jpeg
from PIL import Image

from curation.cli import main as curate
from curation.export.vila import shard_sizes, vila_usable
from curation.export.vila_records import reencode_jpeg


def vila_like_load(folder) -> list:
    """What VILA's Lazy{MMC4,Coyo}Dataset does with world size 1."""
    n_shards = len(os.listdir(folder)) // 2
    counts = sorted(f for f in os.listdir(folder) if f.endswith(".count"))[:n_shards]
    n = [int(open(os.path.join(folder, f)).read().strip()) for f in counts]
    data = []
    for name in counts:
        with open(os.path.join(folder, name.replace(".count", ".pkl")), "rb") as f:
            shard = pickle.load(f)  # our own export, read back only here
        assert len(shard) == n[counts.index(name)]
        data.extend(shard)
    assert len(data) == sum(n)
    return data


def test_mmc4_layout(tmp_path, capsys):
    out, dest = tmp_path / "out", tmp_path / "vila_mmc4"
    build_output(out)
    rc = curate(["export", "vila", str(out), str(dest), "--kind", "mmc4",
                 "--samples-per-shard", "5", "--world-size", "2"])
    assert rc == 0
    names = sorted(os.listdir(dest))
    assert all(n.endswith((".pkl", ".count")) for n in names) and len(names) % 2 == 0
    sizes = [int((dest / n).read_text()) for n in names if n.endswith(".count")]
    assert len(sizes) % 2 == 0 and max(sizes) - min(sizes) <= 1
    docs = vila_like_load(dest)
    assert len(docs) == 20  # 27 documents, the 7 without images are skipped
    assert "no_images=7" in capsys.readouterr().out
    for doc in docs:
        assert len(doc["similarity_matrix"]) == len(doc["image_info"]) >= 1
        assert all(len(row) == len(doc["text_list"]) for row in doc["similarity_matrix"])
        i = int(doc["doc_id"][3:])
        for j, info in enumerate(doc["image_info"]):
            im = Image.open(io.BytesIO(base64.b64decode(info["image_base64"])))
            assert im.format == "JPEG"
            got = im.convert("RGB").resize((1, 1)).getpixel((0, 0))
            assert all(abs(a - b) < 12 for a, b in zip(got, color(i, j)))
            assert info["matched_text_index"] == len(doc["image_info"]) - 1 - j
    rc = curate(["export", "vila", str(out), str(dest), "--kind", "mmc4"])
    assert rc == 2  # not empty without --overwrite


def test_coyo_layout_and_world_size_warning(tmp_path, capsys):
    out, dest = tmp_path / "pairs", tmp_path / "vila_coyo"
    keys = build_pairs(out, n=21)
    rc = curate(["export", "vila", str(out), str(dest), "--kind", "coyo",
                 "--world-size", "8", "--samples-per-shard", "100"])
    assert rc == 0
    assert "only 1 shard(s) for world size 8" not in capsys.readouterr().err
    names = sorted(os.listdir(dest))
    assert names[:2] == ["part-00000.count", "part-00000.pkl"] and len(names) == 16
    samples = vila_like_load(dest)
    assert len(samples) == len(keys)
    assert set(samples[0]) == {"id", "url", "text", "clip_sim", "image"}
    assert {s["id"] for s in samples} == {5000 + i for i in range(21)}
    assert samples[0]["text"].startswith("a photo number")
    Image.open(io.BytesIO(base64.b64decode(samples[0]["image"]))).verify()
    dest2 = tmp_path / "vila_coyo_small"
    assert curate(["export", "vila", str(out), str(dest2), "--kind", "coyo",
                   "--world-size", "32"]) == 0
    assert "only 1 shard(s) for world size 32" in capsys.readouterr().err


def test_coyo_wds_layout(tmp_path):
    out, dest = tmp_path / "pairs", tmp_path / "vila_wds"
    build_pairs(out, n=10)
    assert curate(["export", "vila", str(out), str(dest), "--kind", "coyo-wds",
                   "--samples-per-shard", "4"]) == 0
    meta = json.loads((dest / "wids-meta.json").read_text())
    assert meta["__kind__"] == "VILA-WebDataset" and meta["wids_version"] == 1
    assert [s["nsamples"] for s in meta["shardlist"]] == [4, 3, 3]
    for entry in meta["shardlist"]:
        path = dest / entry["url"]
        assert entry["filesize"] == path.stat().st_size
        with tarfile.open(path) as tf:
            names = tf.getnames()
        assert len(names) == 3 * entry["nsamples"]
        keys = {n.split(".", 1)[0] for n in names}
        assert all("." not in k for k in keys)
        assert {n.split(".", 1)[1] for n in names} == {"jpg", "txt", "json"}


def test_balancing_and_vila_arithmetic():
    assert shard_sizes(10, 4) == [4, 3, 3]
    assert shard_sizes(10, 4, world_size=2) == [3, 2, 3, 2]
    assert shard_sizes(3, 100, world_size=8) == [3]
    assert vila_usable([3, 2, 3, 2], 2) == 10 and vila_usable([3, 3, 2, 2], 2) == 8
    assert vila_usable(shard_sizes(1001, 100, 4), 4) == 1000 and vila_usable([3], 8) == 0
    assert vila_usable([5, 5, 4], 2) == 10  # the third shard is the dropped remainder


def test_reencode_keeps_short_side_bound():
    big = Image.new("RGB", (900, 600), (10, 200, 30))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    small = Image.open(io.BytesIO(reencode_jpeg(buf.getvalue(), 336)))
    assert small.format == "JPEG" and small.size == (504, 336)
    tiny = Image.open(io.BytesIO(reencode_jpeg(jpeg((1, 2, 3)), 336)))
    assert tiny.size == (24, 16)  # never upscaled
    with pytest.raises(Exception):
        reencode_jpeg(b"not an image", 336)


def test_export_from_s3_output(s3_bucket, tmp_path):
    bucket, options = s3_bucket
    build_pairs(None, n=6, out=f"{bucket}/pairs", storage_options=options)
    dest = tmp_path / "from_s3"
    assert curate(["export", "vila", f"{bucket}/pairs", str(dest), "--kind", "coyo",
                   "--storage-options", json.dumps(options)]) == 0
    assert len(vila_like_load(dest)) == 6

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
from curation.export.vila import shard_sizes, short_side_for, vila_usable
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
    printed = capsys.readouterr().out
    assert "skipped 7: no_images=7" in printed and "world size 2 trains on 20 samples" in printed
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
    rc = curate(["export", "vila", str(out), str(dest), "--kind", "mmc4", "--world-size", "2"])
    assert rc == 2  # not empty without --overwrite


def test_coyo_layout_counts_whole_groups_and_refuses_empty_ranks(tmp_path, capsys):
    out, dest = tmp_path / "pairs", tmp_path / "vila_coyo"
    keys = build_pairs(out, n=21)
    rc = curate(["export", "vila", str(out), str(dest), "--kind", "coyo",
                 "--world-size", "2", "--samples-per-shard", "4"])
    assert rc == 0
    # 21 pairs -> 6 shards (a multiple of 2), ranks hold 11 and 10 pairs -> 2 groups each
    assert "trains on 16 pairs (4 indices of 4)" in capsys.readouterr().out
    names = sorted(os.listdir(dest))
    assert names[:2] == ["part-00000.count", "part-00000.pkl"] and len(names) == 12
    samples = vila_like_load(dest)
    assert len(samples) == len(keys)
    assert set(samples[0]) == {"id", "url", "text", "clip_sim", "image"}
    assert {s["id"] for s in samples} == {5000 + i for i in range(21)}
    assert samples[0]["text"].startswith("a photo number")
    Image.open(io.BytesIO(base64.b64decode(samples[0]["image"]))).verify()
    for world, why in ((8, "would train on nothing"), (32, "only 21 shard")):
        target = tmp_path / f"w{world}"
        assert curate(["export", "vila", str(out), str(target), "--kind", "coyo",
                       "--world-size", str(world), "--samples-per-shard", "1"]) == 2
        assert why in capsys.readouterr().err
        assert not target.exists() or not os.listdir(target)


def test_source_filtering_on_a_mixed_output(tmp_path, capsys):
    out = tmp_path / "mixed"
    build_output(out, unit_sizes=(6,))
    build_pairs(tmp_path / "pairs", n=6)
    for tar in (tmp_path / "pairs" / "shards").glob("*.tar"):  # one output, both kinds
        (out / "shards" / f"9{tar.name}").write_bytes(tar.read_bytes())
    coyo = tmp_path / "coyo"
    assert curate(["export", "vila", str(out), str(coyo), "--kind", "coyo",
                   "--world-size", "1"]) == 0
    printed = capsys.readouterr().out
    samples = vila_like_load(coyo)
    assert all(s["text"].startswith("a photo number") for s in samples)
    assert "source:mmc4=" in printed
    mmc4 = tmp_path / "mmc4"
    assert curate(["export", "vila", str(out), str(mmc4), "--kind", "mmc4",
                   "--world-size", "1"]) == 0
    assert "source:coyo=" in capsys.readouterr().out
    assert all(d["doc_id"].startswith("doc") for d in vila_like_load(mmc4))
    only = tmp_path / "only"
    assert curate(["export", "vila", str(out), str(only), "--kind", "mmc4",
                   "--world-size", "1", "--source", "coyo"]) == 0
    assert all(d["doc_id"].startswith("pair") for d in vila_like_load(only))


def test_export_and_bridge_see_the_same_images(tmp_path):
    """An undecodable image among the first 6: both leave it out before the cap."""
    from curation.document import IMAGE_OK, Document, ImageRecord, Provenance
    from shards.local import write_output
    from shards.pack import ShardLimits
    from trainer_bridge import VilaPretrain
    from trainer_bridge.images import DefaultProcessor
    from trainer_bridge.tar_reader import read_samples

    images = []
    for j in range(8):
        im = ImageRecord(url=f"http://h/{j}.jpg", matched_text_index=j % 3, matched_sim=0.3)
        im.status, im.mime = IMAGE_OK, "image/jpeg"
        im.data = b"broken" if j == 1 else jpeg(color(1, j))
        images.append(im)
    doc = Document(doc_id="doc0001", source="mmc4", url="http://h", texts=["a", "b", "c"],
                   images=images, provenance=Provenance(file="x", line=1))
    out = tmp_path / "out"
    write_output({"00000-00000": [doc]}, str(out), ShardLimits(max_samples=4))
    dest = tmp_path / "dest"
    assert curate(["export", "vila", str(out), str(dest), "--kind", "mmc4",
                   "--world-size", "1"]) == 0
    (exported,) = vila_like_load(dest)
    vila_sees = [info["matched_text_index"] for info in exported["image_info"][:6]]
    raw = next(read_samples(str(next((out / "shards").glob("*.tar")))))
    bridge = VilaPretrain(processor=DefaultProcessor(8)).build(raw)
    assert len(bridge.images) == len(vila_sees) == 6
    assert sorted(vila_sees) == [0, 0, 0, 1, 2, 2]  # image 1 (sentence 1) left out
    assert bridge.text == "<image><image><image>a<image>b<image><image>c"


def test_coyo_wds_layout(tmp_path):
    out, dest = tmp_path / "pairs", tmp_path / "vila_wds"
    build_pairs(out, n=10)
    assert curate(["export", "vila", str(out), str(dest), "--kind", "coyo-wds",
                   "--samples-per-shard", "4", "--world-size", "1"]) == 0
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
    assert vila_usable([6, 5, 5, 5], 2, group=4) == 16  # ranks 11 and 10 -> 2 groups each
    assert short_side_for(None, "vila1") == 336 and short_side_for(None, "nvila") == 448
    assert short_side_for("siglip-384") == 384 and short_side_for("none") is None


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
                   "--world-size", "1", "--storage-options", json.dumps(options)]) == 0
    assert len(vila_like_load(dest)) == 6

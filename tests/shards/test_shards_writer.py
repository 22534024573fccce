"""Shard writer: plain webdataset and tarfile read the shards; bounds hold."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from curation.document import IMAGE_OK, Document, ImageRecord, Provenance
from shards.local import write_output
from shards.pack import ShardLimits


def jpeg(color, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), color).save(buf, "PNG")
    return buf.getvalue()


def make_doc(i: int, n_images: int = 2, drop_doc: bool = False) -> Document:
    images = []
    for j in range(n_images):
        im = ImageRecord(url=f"http://h/{i}/{j}.jpg", matched_text_index=0)
        if j == 1:
            im.drop("http_404", "download")
        else:
            im.status, im.data, im.mime = IMAGE_OK, jpeg((i * 10 % 255, j, 0)), "image/jpeg"
        images.append(im)
    if n_images > 2:
        images[2].data, images[2].mime = png((0, 0, i)), "image/png"
    doc = Document(doc_id=f"doc{i:04d}", source="mmc4", url=f"http://h/{i}",
                   texts=["a sentence.", "another one."], images=images,
                   provenance=Provenance(file="in.jsonl", line=i + 1))
    if drop_doc:
        doc.drop("duplicate_exact", "dedup")
    return doc


def test_shards_read_back_with_plain_webdataset_and_tarfile(tmp_path):
    docs = [make_doc(i, n_images=3, drop_doc=(i == 4)) for i in range(10)]
    totals = write_output({"00000-00000": docs}, str(tmp_path), ShardLimits(max_samples=4))
    index = pq.read_table(tmp_path / "shards.parquet").to_pylist()
    assert [r["samples"] for r in index] == [4, 4, 1]
    assert [r["shard"] for r in index] == ["000000.tar", "000001.tar", "000002.tar"]
    stats = json.loads((tmp_path / "stats" / "00000-00000.json").read_text())
    assert stats["documents_in"] == 10 and stats["documents_written"] == 9
    assert stats["documents_dropped"] == {"dedup:duplicate_exact": 1}
    assert stats["image_status"] == {"ok": 20, "http_404": 10}
    assert totals["documents_written"] == 9 and totals["shards"] == 3
    shard_paths = sorted(str(p) for p in (tmp_path / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(shard_paths, shardshuffle=False))
    assert len(samples) == 9
    # keys name the unit and the document's position in it (doc 4 was dropped)
    assert [s["__key__"][-2:] for s in samples] == ["00", "01", "02", "03", "05", "06",
                                                    "07", "08", "09"]
    for s in samples:
        assert "." not in s["__key__"]
        rec = json.loads(s["json"])
        members = [im["member"] for im in rec["images"] if im["member"]]
        assert members == ["0.jpg", "1.png"]
        assert [im["status"] for im in rec["images"]] == ["ok", "http_404", "ok"]
        for m in members:
            Image.open(io.BytesIO(s[m])).verify()
    with tarfile.open(shard_paths[0]) as tf:
        names = tf.getnames()
    assert names[:3] == ["00000-00000-000000.0.jpg", "00000-00000-000000.1.png",
                         "00000-00000-000000.json"]
    manifest = pq.read_table(tmp_path / "manifest").to_pylist()
    assert len(manifest) == 9 and manifest[0]["num_images"] == 2
    assert {m["shard"] for m in manifest} == {p.rsplit("/", 1)[1] for p in shard_paths}
    # offset/length locate each sample inside its shard: a range read gives the sample
    row = manifest[5]
    blob = (tmp_path / "shards" / row["shard"]).read_bytes()[
        row["offset"]:row["offset"] + row["length"]]
    with tarfile.open(fileobj=io.BytesIO(blob + b"\0" * 1024)) as tf:
        assert tf.getnames()[-1] == f"{row['key']}.json"
    drops = pq.read_table(tmp_path / "drops" / "00000-00000.parquet").to_pylist()
    assert len(drops) == 1
    assert {k: drops[0][k] for k in ("doc_id", "stage", "reason", "location", "unit",
                                     "position")} == \
        {"doc_id": "doc0004", "stage": "dedup", "reason": "duplicate_exact",
         "location": "in.jsonl:5", "unit": "00000-00000", "position": 4}
    full = pq.read_table(tmp_path / "dropped" / "00000-00000.parquet").to_pylist()
    assert json.loads(full[0]["record"])["drop_reason"] == "duplicate_exact"


def test_shards_fill_across_units(tmp_path):
    """Units of 3 kept documents, shards of 4: shards span units and all but the
    last are full, in unit order."""
    units = {f"00000-{c:05d}": [make_doc(10 * c + i) for i in range(3)] for c in range(5)}
    write_output(units, str(tmp_path), ShardLimits(max_samples=4))
    manifest = pq.read_table(tmp_path / "manifest").to_pylist()
    by_shard = [[r["key"] for r in manifest if r["shard"] == f"{i:06d}.tar"]
                for i in range(4)]
    assert [len(k) for k in by_shard] == [4, 4, 4, 3]
    assert by_shard[1] == ["00000-00001-000001", "00000-00001-000002",
                           "00000-00002-000000", "00000-00002-000001"]


def test_byte_bound_splits_shards_and_no_temp_files_remain(tmp_path):
    docs = [make_doc(i) for i in range(6)]
    size = len(docs[0].images[0].data)
    limit = 2 * size + 4000
    write_output({"00001-00000": docs}, str(tmp_path),
                 ShardLimits(max_samples=100, max_bytes=limit))
    index = pq.read_table(tmp_path / "shards.parquet").to_pylist()
    assert len(index) >= 3
    # a shard's file is within the limit (tar headers and end blocks included)
    assert all((tmp_path / "shards" / r["shard"]).stat().st_size <= limit + 1024
               for r in index)
    assert all(r["bytes"] == (tmp_path / "shards" / r["shard"]).stat().st_size
               for r in index)
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_kernel_copy_and_python_copy_write_the_same_shards(tmp_path):
    """Local pieces are copied into shards with copy_file_range; the bytes equal a
    copy through Python (the path remote storage takes)."""
    from curation.location import Location
    from shards.pack import UnitPieces, assemble_shard
    from shards.writer import write_unit

    pieces = Location.of(str(tmp_path / "pieces"))
    for c in range(3):
        write_unit([make_doc(10 * c + i, n_images=3) for i in range(3)], f"00000-{c:05d}",
                   Location.of(str(tmp_path / "unit-output")), pieces)

    class ReadOnly:  # a piece source without the kernel copy
        def index(self, name):
            return UnitPieces(pieces).index(name)

        def read(self, name, start, end):
            return UnitPieces(pieces).read(name, start, end)

    # the kernel path really runs here (a silent fall-back would make this test moot)
    with open(tmp_path / "probe", "wb") as f:
        assert UnitPieces(pieces).copy_to("00000-00000", 0, 512, f)
    assert (tmp_path / "probe").read_bytes() == (tmp_path / "pieces" / "00000-00000.tar"
                                                  ).read_bytes()[:512]
    ranges = [("00000-00000", 1, 2), ("00000-00001", 0, 3), ("00000-00002", 0, 1)]
    for source, where in ((UnitPieces(pieces), "kernel"), (ReadOnly(), "python")):
        assemble_shard(0, ranges, source, Location.of(str(tmp_path / where)))
    kernel = (tmp_path / "kernel" / "shards" / "000000.tar").read_bytes()
    assert kernel == (tmp_path / "python" / "shards" / "000000.tar").read_bytes()
    with tarfile.open(tmp_path / "kernel" / "shards" / "000000.tar") as tf:
        keys = sorted({n.split(".", 1)[0] for n in tf.getnames()})
    assert keys == ["00000-00000-000001", "00000-00000-000002", "00000-00001-000000",
                    "00000-00001-000001", "00000-00001-000002", "00000-00002-000000"]

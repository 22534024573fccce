"""`curate show` and the safe shard reader."""

from __future__ import annotations

import io
import shutil
import tarfile

from curation.cli import main as curate
from curation.inspect.docview import model_text
from curation.inspect.samples import read_shard_samples


def test_show_prints_model_view_and_dropped_images(constructed_output, capsys):
    assert curate(["show", str(constructed_output), "00000-00000-000001"]) == 0
    out = capsys.readouterr().out
    assert "First sentence here. <image> A second one." in out
    assert "72x72, sim 0.280, sentence 1" in out
    assert "http_404 (by download)  http://127.0.0.1/4.jpg" in out


def test_show_orders_images_by_assigned_sentence(constructed_output, capsys):
    assert curate(["show", str(constructed_output), "00000-00000-000000", "--json"]) == 0
    import json

    record = json.loads(capsys.readouterr().out)
    assert model_text(record) == ("<image> First sentence here. A second one. <image> "
                                  "And a third sentence.")
    assert [im["member"] for im in record["images"]] == ["0.jpg", "1.jpg"]


def test_show_without_manifest_scans_the_unit(constructed_output, capsys):
    (constructed_output / "manifest.parquet").unlink()
    shutil.rmtree(constructed_output / "manifest")
    assert curate(["show", str(constructed_output), "00001-00000-000001"]) == 0
    assert "a blue photo" in capsys.readouterr().out
    assert curate(["show", str(constructed_output), "00001-00000-000009"]) == 2
    assert "no sample with key '00001-00000-000009'" in capsys.readouterr().err


def test_reader_skips_unsafe_members(tmp_path):
    (tmp_path / "shards").mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(name, data=b"", kind=tarfile.REGTYPE):
            info = tarfile.TarInfo(name)
            info.type, info.size = kind, len(data)
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add("k-1.json", b'{"texts": ["x"]}')
        add("../k-1.0.jpg", b"evil")
        add("k-1.1.jpg", kind=tarfile.SYMTYPE)
        add("k-1.2.jpg", b"jpegbytes")
        add("k-2.json", b"{not json")
    (tmp_path / "shards" / "s.tar").write_bytes(buf.getvalue())
    found = read_shard_samples(str(tmp_path), "s.tar", {"k-1", "k-2"})
    assert found["k-1"].record == {"texts": ["x"]}
    assert found["k-1"].files == {"2.jpg": b"jpegbytes"}
    assert any("is a link; refused" in p for p in found["k-1"].problems)
    assert found["k-2"].record is None and "not valid JSON" in found["k-2"].problems[0]
    assert not (tmp_path / "k-1.0.jpg").exists() and not (tmp_path.parent / "k-1.0.jpg").exists()

"""`curate show`: the manifest finds the sample, only its byte range is read; and the
safe shard reader used for outputs without byte ranges."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest
from inspect_builder import SHARD_KEYS

from curation.cli import main as curate
from curation.inspect.docview import model_text
from curation.inspect.load import load_output
from curation.inspect.samples import read_shard_samples
from curation.inspect.show import locate


def test_show_prints_model_view_and_dropped_images(constructed_output, capsys):
    assert curate(["show", str(constructed_output), "00000-00000-000001"]) == 0
    out = capsys.readouterr().out
    assert "key 00000-00000-000001  shard 000000.tar  doc_id mmc4002" in out
    assert "First sentence here. <image> A second one." in out
    assert "72x72, sim 0.280, sentence 1" in out
    assert "http_404 (by download)  http://127.0.0.1/4.jpg" in out


def test_show_orders_images_by_assigned_sentence(constructed_output, capsys):
    assert curate(["show", str(constructed_output), "00000-00000-000000", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert model_text(record) == ("<image> First sentence here. A second one. <image> "
                                  "And a third sentence.")
    assert [im["member"] for im in record["images"]] == ["0.jpg", "1.jpg"]


@pytest.mark.parametrize("key", [k for keys in SHARD_KEYS.values() for k in keys])
def test_every_key_is_located_in_its_shard(constructed_output, key):
    view = load_output(str(constructed_output))
    [at] = locate(view, key)
    assert key in SHARD_KEYS[at.shard]
    assert at.offset is not None and at.length > 0


def test_show_reads_only_the_byte_range(constructed_output, capsys):
    """Every byte of the shard outside the sample's range is garbage: show still works;
    garbage inside the range is a clear error."""
    part = pq.read_table(constructed_output / "manifest" / "000000.parquet").to_pylist()
    row = next(r for r in part if r["key"] == "00001-00000-000000")
    tar = constructed_output / "shards" / "000000.tar"
    data = bytearray(tar.read_bytes())
    start, end = row["offset"], row["offset"] + row["length"]
    data[:start] = b"\xff" * start
    data[end:] = b"\xff" * (len(data) - end)
    tar.write_bytes(bytes(data))
    (constructed_output / "shards" / "000001.tar").write_bytes(b"garbage")
    assert curate(["show", str(constructed_output), "00001-00000-000000"]) == 0
    assert "<image> a red square photo" in capsys.readouterr().out
    assert curate(["show", str(constructed_output), "00000-00000-000000"]) == 2
    err = capsys.readouterr().err
    assert "000000.tar bytes 0-" in err and "not a tar fragment" in err


def test_unknown_key_is_a_clear_error(constructed_output, capsys):
    assert curate(["show", str(constructed_output), "00001-00000-000009"]) == 2
    assert "no sample with key '00001-00000-000009'" in capsys.readouterr().err
    assert curate(["show", str(constructed_output), "99999-00000-000000"]) == 2
    assert curate(["show", str(constructed_output), "0"]) == 2


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

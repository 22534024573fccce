"""Ingest: the real MMC4/COYO/LAION fixtures parse; bad records are quarantined."""

from __future__ import annotations

import gzip
import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.document import Document
from curation.ingest.files import expand_inputs
from curation.ingest.mmc4 import read_mmc4
from curation.ingest.pairs import read_pairs
from curation.ingest.quarantine import QuarantineRecord
from tests.conftest import DATA

MMC4 = DATA / "mmc4_readme_example.jsonl"


def split(items):
    docs = [i for i in items if isinstance(i, Document)]
    bad = [i for i in items if isinstance(i, QuarantineRecord)]
    return docs, bad


def test_real_mmc4_example_round_trips_all_fields():
    (doc,), bad = split(list(read_mmc4(str(MMC4))))
    assert not bad
    raw = json.loads(MMC4.read_text())
    assert doc.texts == raw["text_list"]
    assert [im.url for im in doc.images] == [i["raw_url"] for i in raw["image_info"]]
    assert [im.matched_text_index for im in doc.images] == [2, 1]
    assert doc.similarity_matrix == raw["similarity_matrix"]
    assert doc.metadata["could_have_url_duplicate"] == 0
    assert doc.images[0].metadata["image_name"] == "b9040a0dbb22.jpg"
    assert doc.provenance.location().endswith("mmc4_readme_example.jsonl:1")
    again = Document.from_dict(json.loads(json.dumps(doc.to_dict())))
    assert again.to_dict() == doc.to_dict()


def test_doc_id_is_deterministic_and_dot_free():
    a = split(list(read_mmc4(str(MMC4))))[0][0]
    b = split(list(read_mmc4(str(MMC4))))[0][0]
    assert a.doc_id == b.doc_id and "." not in a.doc_id and len(a.doc_id) == 16


@pytest.mark.parametrize("line, reason", [
    (b'{"text_list": ["a"], "image_info": [', "malformed_json"),
    (b'{"image_info": []}', "missing_field:text_list"),
    (b'{"text_list": "not a list"}', "wrong_type"),
    (b'{"text_list": [], "image_info": []}', "empty_document"),
    (b'{"text_list": ["a"], "image_info": [{"raw_url": "http://x/a.jpg", '
     b'"matched_text_index": 5}]}', "bad_text_index"),
    (b'{"text_list": ["a"], "image_info": [{"raw_url": "http://x/a.jpg", '
     b'"matched_sim": NaN}]}', "non_finite_number"),
    (b'{"text_list": ["a"], "text_list": ["b"]}', "duplicate_key"),
    (b'{"text_list": ["caf\xe9"]}', "not_utf8"),
    (b'[1, 2, 3]', "wrong_type"),
    (b'{"text_list": ["a"], "image_info": [{"matched_text_index": 0}]}',
     "missing_field:raw_url"),
])
def test_bad_lines_are_quarantined_with_reason_and_line(tmp_path, line, reason):
    path = tmp_path / "in.jsonl"
    path.write_bytes(MMC4.read_bytes() + line + b"\n" + MMC4.read_bytes())
    docs, bad = split(list(read_mmc4(str(path))))
    assert len(docs) == 2
    assert [(b.reason, b.line) for b in bad] == [(reason, 2)]
    assert bad[0].location() == f"{path}:2"


def test_absurd_image_count_and_overlong_line(tmp_path):
    many = {"text_list": ["a"], "image_info": [{"raw_url": f"http://x/{i}.jpg"}
                                                for i in range(1001)]}
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(many) + "\n" + json.dumps({"text_list": ["b" * 5000]})
                    + "\n" + MMC4.read_text())
    docs, bad = split(list(read_mmc4(str(path), max_line_bytes=4096)))
    assert [b.reason for b in bad] == ["line_too_long", "line_too_long"]
    docs, bad = split(list(read_mmc4(str(path))))
    assert [b.reason for b in bad] == ["too_many_images"] and len(docs) == 2


def test_gzip_and_zip_inputs(tmp_path):
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(MMC4.read_bytes() * 2))
    zp = tmp_path / "b.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("docs_shard_0_v2.jsonl", MMC4.read_bytes())
        zf.writestr("docs_shard_1_v2.jsonl", MMC4.read_bytes() * 3)
        zf.writestr("README.txt", "not json")
    assert len(split(list(read_mmc4(str(gz))))[0]) == 2
    docs, bad = split(list(read_mmc4(str(zp))))
    assert len(docs) == 4 and not bad
    assert docs[1].provenance.file.endswith("b.zip!docs_shard_1_v2.jsonl")


def test_real_coyo_preview_keeps_every_column():
    docs, bad = split(list(read_pairs(str(DATA / "coyo700m_readme_preview.parquet"))))
    assert not bad and len(docs) == 7
    table = pq.read_table(DATA / "coyo700m_readme_preview.parquet").to_pylist()
    for doc, row in zip(docs, table):
        assert doc.source == "coyo"
        assert doc.images[0].url == row["url"] and doc.texts == [row["text"]]
        assert doc.metadata["clip_similarity_vitl14"] == row["clip_similarity_vitl14"]
        assert doc.metadata["image_phash"] == row["image_phash"]


def test_laion_style_columns_and_override(tmp_path):
    docs, bad = split(list(read_pairs(str(DATA / "laion_test_1000.parquet"))))
    assert len(docs) + len(bad) == 1000 and len(docs) >= 990
    assert docs[0].source == "laion"
    odd = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"link": ["http://x/a.jpg", None], "alt": ["a", "b"]}), odd)
    docs, bad = split(list(read_pairs(str(odd))))
    assert docs == [] and bad[0].reason == "missing_column:url"
    docs, bad = split(list(read_pairs(str(odd), url_column="link", caption_column="alt")))
    assert len(docs) == 1 and [(b.reason, b.row) for b in bad] == [("missing_field:url", 1)]


def test_expand_inputs_globs_dirs_and_missing(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("x.jsonl", "y.parquet", "notes.txt"):
        (tmp_path / "d" / name).write_text("")
    assert [p.rsplit("/", 1)[1] for p in expand_inputs([str(tmp_path / "d")])] == \
        ["x.jsonl", "y.parquet"]
    assert len(expand_inputs([str(tmp_path / "d" / "*.jsonl")])) == 1
    with pytest.raises(FileNotFoundError, match="nope"):
        expand_inputs([str(tmp_path / "nope.jsonl")])

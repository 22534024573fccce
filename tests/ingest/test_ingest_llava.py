"""LLaVA SFT ingest: local images under image_root, URLs left for download, bad records
quarantined with a reason; end to end through `run_pipeline` into shards the trainer
bridge mixes with text-only data."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image

from curation.demo.corpus import DATA
from curation.document import IMAGE_OK, IMAGE_PENDING, Document
from curation.ingest.llava import read_llava
from curation.ingest.quarantine import QuarantineRecord
from trainer_bridge.sft_shards import record_of

IMAGES = sorted((DATA / "images").iterdir())


def png(size=(30, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def conv(q="<image>\nwhat is it?", a="a cat"):
    return [{"from": "human", "value": q}, {"from": "gpt", "value": a}]


def write_input(tmp_path, records, json_list=False):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "sub" / "a.png").write_bytes(png())
    (root / "bad.jpg").write_bytes(b"not an image")
    (tmp_path / "secret.png").write_bytes(png())
    path = tmp_path / ("sft.json" if json_list else "sft.jsonl")
    text = json.dumps(records) if json_list else "\n".join(
        r if isinstance(r, str) else json.dumps(r) for r in records)
    path.write_text(text)
    return path, root


def split(items):
    items = list(items)
    return ([i for i in items if isinstance(i, Document)],
            [i for i in items if isinstance(i, QuarantineRecord)])


def test_records_images_and_reasons(tmp_path):
    records = [
        {"id": 1, "image": "sub/a.png", "conversations": conv(), "source_set": "coco"},
        {"id": 2, "image": ["sub/a.png", "http://127.0.0.1:9/x.jpg"],
         "conversations": conv("<image> and <image>?", "two") + conv("more?", "no")},
        {"id": 3, "conversations": conv("text only <image> literal", "ok")},
        {"id": 4, "image": "../secret.png", "conversations": conv()},
        {"id": 5, "image": "/etc/passwd", "conversations": conv()},
        {"id": 6, "image": "sub/missing.png", "conversations": conv()},
        {"id": 7, "image": "bad.jpg", "conversations": conv()},
        "{not json",
        {"id": 9, "image": "sub/a.png"},
        {"id": 10, "image": "sub/a.png", "conversations": [{"from": "human", "value": 3}]},
    ]
    path, root = write_input(tmp_path, records)
    docs, bad = split(read_llava(str(path), str(root)))
    assert [d.metadata["id"] for d in docs] == [1, 2, 3]
    assert [(b.line, b.reason) for b in bad] == [
        (4, "image_outside_root"), (5, "image_outside_root"), (6, "missing_image"),
        (7, "not_an_image"), (8, "malformed_json"), (9, "missing_field:conversations"),
        (10, "wrong_type")]
    one, two, three = docs
    assert one.source == "llava" and one.texts == ["<image>\nwhat is it?", "a cat"]
    (im,) = one.images
    assert (im.status, im.width, im.height, im.mime) == (IMAGE_OK, 30, 20, "image/png")
    assert im.data == png() and im.matched_text_index == 0
    assert [i.status for i in two.images] == [IMAGE_OK, IMAGE_PENDING]
    assert [i.matched_text_index for i in two.images] == [0, 0]
    assert three.images == [] and one.provenance.location().endswith("sft.jsonl:1")
    for doc, rec in zip(docs, records[:3]):  # the record comes back from the document
        again = record_of(Document.from_dict(json.loads(json.dumps(doc.to_dict()))).to_dict())
        assert again == rec


def test_json_list_uses_rows_and_default_root(tmp_path):
    records = [{"id": "a", "image": "imgs/sub/a.png", "conversations": conv()},
               {"id": "b", "image": "nope.png", "conversations": conv()}]
    path, _ = write_input(tmp_path, records, json_list=True)
    docs, bad = split(read_llava(str(path)))  # root: the file's folder
    assert [d.metadata["id"] for d in docs] == ["a"] and docs[0].provenance.row == 0
    assert [(b.row, b.reason) for b in bad] == [(1, "missing_image")]


def test_symlink_out_of_root_is_refused(tmp_path):
    path, root = write_input(tmp_path, [{"id": 1, "image": "link.png",
                                         "conversations": conv()}])
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    _, bad = split(read_llava(str(path), str(root)))
    assert [b.reason for b in bad] == ["image_outside_root"]


def test_curate_run_llava_into_shards_then_sft_mixture(ray_session, tmp_path, static_server,
                                                       tiny_sft_tokenizer):
    from curation.pipeline_config import parse_pipeline
    from curation.runner.pipeline import run_pipeline
    from trainer_bridge import SftMixture, SftSource
    from trainer_bridge.images import DefaultProcessor

    server = static_server(DATA / "images")
    local = tmp_path / "imgs"
    local.mkdir()
    shutil.copy(IMAGES[0], local / IMAGES[0].name)
    records = [{"id": "l1", "image": IMAGES[0].name, "conversations": conv()},
               {"id": "u1", "image": f"{server.base_url}/{IMAGES[1].name}",
                "conversations": conv(a="a dog")},
               {"id": "m1", "image": "gone.jpg", "conversations": conv()},
               {"id": "t1", "conversations": conv("hello", "hi there")}]
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "sft.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    pipeline = parse_pipeline({
        "name": "sft", "ingest": {"format": "llava", "image_root": str(local),
                                  "docs_per_unit": 2},
        "stages": [{"download": {"allow_hosts": ["127.0.0.1"], "keep_text_only": True}}],
        "writer": {"max_samples": 2}})
    out = tmp_path / "out"
    totals = run_pipeline(pipeline, [str(inputs)], str(out))
    assert totals["quarantined"] == {"missing_image": 1}
    assert totals["documents_written"] == 3
    source = SftSource.from_shards("sft", str(out))
    assert sorted(r["id"] for r in source.records) == ["l1", "t1", "u1"]
    flan = SftSource("flan", [{"id": "f", "conversations": conv("hello", "hi there")}],
                     weight=1.0)
    ds = SftMixture([source, flan], tiny_sft_tokenizer, processor=DefaultProcessor(16),
                    num_samples=8)
    samples = [ds[i] for i in range(len(ds))]
    by_id = {s["id"]: s for s in samples}
    assert by_id["u1"]["images"].shape == (1, 3, 16, 16)
    assert {s["source"] for s in samples} == {"sft", "flan"} and ds.failures == 0


@pytest.fixture(scope="module")
def tiny_sft_tokenizer():
    pytest.importorskip("transformers")
    from tests.support.tokenizers import word_level_tokenizer

    return word_level_tokenizer([
        "A chat between a curious user and an artificial intelligence assistant. The "
        "assistant gives helpful, detailed, and polite answers to the user's questions. "
        "USER: ASSISTANT: what is it? a cat dog hello hi there"])

"""SFT: assistant-only labels, LLaVA data curated into shards, weighted mixtures."""

from __future__ import annotations

import json
from collections import Counter

import torch
from bridge_builder import jpeg
from torch.utils.data import DataLoader

from curation.ingest.llava import read_llava
from shards.local import write_output
from shards.pack import ShardLimits
from trainer_bridge import (
    Collator,
    ImageFolder,
    SftMixture,
    SftSource,
    ShardConversations,
    load_conversations,
)
from trainer_bridge.images import DefaultProcessor
from trainer_bridge.mixture import allocate


def llava_records(n, image=True):
    out = []
    for i in range(n):
        rec = {"id": f"r{i}", "conversations": [
            {"from": "human", "value": ("<image>\n" if image else "") + "what is shown ?"},
            {"from": "gpt", "value": f"a cat {i}"},
            {"from": "human", "value": "a dog ?"}, {"from": "gpt", "value": "red blue"}]}
        if image:
            rec["image"] = f"img{i % 2}.jpg"
        out.append(rec)
    return out


def write_images(folder):
    (folder / "img0.jpg").write_bytes(jpeg((1, 2, 3)))
    (folder / "img1.jpg").write_bytes(jpeg((9, 9, 9)))


def test_labels_train_only_assistant_turns(tmp_path, tiny_tokenizer):
    write_images(tmp_path)
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in llava_records(3)))
    source = SftSource("llava", load_conversations(str(path)), images=ImageFolder(str(tmp_path)))
    ds = SftMixture([source], tiny_tokenizer, processor=DefaultProcessor(16))
    sample = ds[0]
    ids, labels = torch.tensor(sample["input_ids"]), torch.tensor(sample["labels"])
    assert int((ids == -200).sum()) == 1 == len(sample["images"])
    trained = tiny_tokenizer.decode(ids[labels != -100].tolist())
    assert trained.split() == ["a", "cat", sample["id"][1:], "</s>", "red", "blue", "</s>"]
    assert sample["source"] == "llava" and ds.encoder.unmatched == 0


def curated_llava_output(tmp_path) -> str:
    """LLaVA JSONL with local images -> the llava reader -> shards (as curate run)."""
    write_images(tmp_path)
    records = llava_records(6)
    records[5]["image"] = "missing.jpg"  # quarantined by the reader
    path = tmp_path / "sft.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    docs = [d for d in read_llava(str(path), str(tmp_path)) if hasattr(d, "doc_id")]
    assert len(docs) == 5
    docs[4].images[0].drop("too_small", "image_size")  # a filter dropped one image
    out = tmp_path / "out"
    write_output({"00000-00000": docs}, str(out), ShardLimits(max_samples=2))
    return str(out)


def test_curated_shards_round_trip_and_mix_with_text_only(tmp_path, tiny_tokenizer):
    out = curated_llava_output(tmp_path)
    store = ShardConversations(out)
    assert [r["id"] for r in store.records] == ["r0", "r1", "r2", "r3"]
    assert store.skipped == {"image_dropped": 1}
    original = llava_records(4)
    for rec, orig in zip(store.records, original):
        assert rec["conversations"] == orig["conversations"]
        assert len(rec["image"]) == 1 and rec["image"][0].endswith(".0.jpg")
    assert store.get(store.records[1]["image"][0]) == jpeg((9, 9, 9))
    text_only = llava_records(5, image=False)
    text_only[0]["conversations"][0]["value"] = "keep <image> literal"
    sources = [SftSource.from_shards("sft", out, weight=1.0),
               SftSource("flan", text_only, weight=3.0)]
    ds = SftMixture(sources, tiny_tokenizer, processor=DefaultProcessor(16), num_samples=40)
    tags = Counter(ds[i]["source"] for i in range(len(ds)))
    assert tags == {"sft": 10, "flan": 30}
    for i in range(len(ds)):
        s = ds[i]
        assert int((torch.tensor(s["input_ids"]) == -200).sum()) == len(s["images"])
        assert (len(s["images"]) == 1) == (s["source"] == "sft")
    order = list(ds.plan)
    ds.set_epoch(1)
    assert order != ds.plan and Counter(s for s, _ in order) == Counter(s for s, _ in ds.plan)
    batch = next(iter(DataLoader(ds, batch_size=8, collate_fn=Collator(0))))
    assert batch["images"].shape[0] == int(batch["num_images"].sum())
    assert set(batch["source"]) <= {"sft", "flan"}
    assert allocate([1, 1, 1], 10) == [4, 3, 3]


def test_broken_record_falls_back_to_next(tiny_tokenizer):
    records = llava_records(3, image=False)
    records[1]["conversations"][0]["from"] = "robot"
    ds = SftMixture([SftSource("x", records)], tiny_tokenizer)
    got = [ds[i]["id"] for i in range(3)]
    assert "r1" not in got and len(got) == 3 and ds.failures == 1

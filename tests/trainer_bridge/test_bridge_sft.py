"""SFT: human turns masked, images from a folder or shards, weighted mixtures, tags."""

from __future__ import annotations

import json
from collections import Counter

import torch
from bridge_builder import build_output, jpeg
from torch.utils.data import DataLoader

from trainer_bridge import (
    Collator,
    ImageFolder,
    SftMixture,
    SftSource,
    ShardImages,
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


def test_labels_train_only_assistant_turns(tmp_path, tiny_tokenizer):
    (tmp_path / "img0.jpg").write_bytes(jpeg((1, 2, 3)))
    (tmp_path / "img1.jpg").write_bytes(jpeg((9, 9, 9)))
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in llava_records(3)))
    source = SftSource("llava", load_conversations(str(path)), images=ImageFolder(str(tmp_path)))
    ds = SftMixture([source], tiny_tokenizer, processor=DefaultProcessor(16))
    sample = ds[0]
    ids, labels = torch.tensor(sample["input_ids"]), torch.tensor(sample["labels"])
    assert int((ids == -200).sum()) == 1 == len(sample["images"])
    trained = tiny_tokenizer.decode(ids[labels != -100].tolist())
    assert trained.split() == ["a", "cat", sample["id"][1:], "</s>", "red", "blue", "</s>"]
    assert sample["source"] == "llava"


def test_mixture_weights_text_only_and_tags(tmp_path, tiny_tokenizer):
    root = tmp_path / "out"
    keys = build_output(root, unit_sizes=(4,))
    shard_records = [{"id": k, "image": f"{k}.0.jpg", "conversations": [
        {"from": "human", "value": "<image>\nwhat is shown ?"},
        {"from": "gpt", "value": "a photo"}]} for k in keys if int(k[-1]) % 4 != 0]
    shard_images = ShardImages([str(p) for p in sorted((root / "shards").glob("*.tar"))])
    text_only = llava_records(5, image=False)
    text_only[0]["conversations"][0]["value"] = "keep <image> literal"
    sources = [SftSource("shards", shard_records, weight=1.0, images=shard_images),
               SftSource("flan", text_only, weight=3.0)]
    ds = SftMixture(sources, tiny_tokenizer, processor=DefaultProcessor(16), num_samples=40)
    tags = Counter(ds[i]["source"] for i in range(len(ds)))
    assert tags == {"shards": 10, "flan": 30}
    for i in range(len(ds)):
        s = ds[i]
        assert int((torch.tensor(s["input_ids"]) == -200).sum()) == len(s["images"])
        assert (len(s["images"]) == 1) == (s["source"] == "shards")
    order = [ds.plan[i] for i in range(40)]
    ds.set_epoch(1)
    assert order != ds.plan
    assert Counter(s for s, _ in order) == Counter(s for s, _ in ds.plan)
    batch = next(iter(DataLoader(ds, batch_size=8, collate_fn=Collator(0))))
    assert batch["images"].shape[0] == int(batch["num_images"].sum())
    assert set(batch["source"]) <= {"shards", "flan"}
    assert allocate([1, 1, 1], 10) == [4, 3, 3]


def test_broken_record_falls_back_to_next(tiny_tokenizer):
    records = llava_records(3, image=False)
    records[1]["conversations"][0]["from"] = "robot"
    ds = SftMixture([SftSource("x", records)], tiny_tokenizer)
    got = [ds[i]["id"] for i in range(3)]
    assert "r1" not in got and len(got) == 3 and ds.failures == 1

"""VILA pre-training samples: order, escaping, pairs, tokens vs images, labels, collate."""

from __future__ import annotations

import json

import pytest
import torch
from bridge_builder import color, jpeg
from torch.utils.data import DataLoader

from trainer_bridge import Collator, ShardDataset, VilaPretrain
from trainer_bridge.images import DefaultProcessor
from trainer_bridge.samples import build_interleaved, build_pairs

IMG = -200


def raw_doc(n_images=3, texts=None, matched=None, extra=None):
    texts = texts or ["one.", "two <image> here.", "three."]
    matched = matched if matched is not None else [2, 0, 2][:n_images]
    images, raw = [], {"__key__": "k", "__url__": "u"}
    for j in range(n_images):
        images.append({"url": f"http://x/{j}", "member": f"{j}.jpg",
                       "matched_text_index": matched[j], "status": "ok"})
        raw[f"{j}.jpg"] = jpeg(color(0, j))
    images.insert(1, {"url": "http://x/d", "member": None, "status": "http_404",
                      "matched_text_index": 1})
    raw["json"] = json.dumps({"texts": texts, "images": images, "source": "mmc4",
                              **(extra or {})}).encode()
    return raw


def test_interleaved_like_vila():
    s = build_interleaved(raw_doc(), eos="</s>")
    # images sorted by sentence (stable): image 1 -> sentence 0, images 0 and 2 -> 2
    assert s.text == "<image>one. two <IMAGE> here.<image><image>three.</s>"
    assert s.images == [jpeg(color(0, 1)), jpeg(color(0, 0)), jpeg(color(0, 2))]


def test_first_max_images_in_document_order_then_sorted():
    s = build_interleaved(raw_doc(3, matched=[2, 1, 0]), max_num_images=2)
    assert s.images == [jpeg(color(0, 1)), jpeg(color(0, 0))]  # image 2 cut first
    assert s.text.count("<image>") == 2 and s.skipped_images == 1


def test_unmatched_image_is_left_out_with_its_token():
    s = build_interleaved(raw_doc(2, matched=[5, None]))
    assert s.images == [] and "<image>" not in s.text and s.skipped_images == 2


def test_pairs_pack_several_per_index():
    raws = []
    for i in range(4):
        raw = raw_doc(1, texts=[f"cap {i} <image>"], matched=[0])
        raws.append({**raw, "__key__": f"k{i}"})
    s = build_pairs(raws, eos="</s>")
    assert s.text == "".join(f"<image>cap {i} <IMAGE></s>" for i in range(4))
    assert len(s.images) == 4 and s.key == ["k0", "k1", "k2", "k3"]


def test_tokens_equal_images_under_every_budget(tiny_tokenizer):
    raw = raw_doc()
    raw["1.jpg"] = b"broken bytes"  # one undecodable image goes with its token
    for budget in range(1, 30):
        out = VilaPretrain(tokenizer=tiny_tokenizer, max_length=budget,
                           processor=DefaultProcessor(32))(raw)
        ids = torch.tensor(out["input_ids"])
        assert len(ids) <= budget
        assert int((ids == IMG).sum()) == len(out["images"]) <= 2
        labels = torch.tensor(out["labels"])
        assert torch.equal(labels == -100, ids == IMG)
    full = VilaPretrain(tokenizer=tiny_tokenizer, processor=DefaultProcessor(32))(raw)
    assert full["input_ids"][0] == tiny_tokenizer.bos_token_id
    assert full["input_ids"][-1] == tiny_tokenizer.eos_token_id
    assert full["images"].shape == (2, 3, 32, 32)


def test_processor_kinds():
    from PIL import Image

    im = Image.new("RGB", (50, 30), (255, 0, 0))
    t = DefaultProcessor(16)(im)
    assert t.shape == (3, 16, 16) and t[0].mean() > 1.5 and t[1].mean() < 0
    transforms = pytest.importorskip("torchvision.transforms")  # open_clip-style callable
    pre = transforms.Compose([transforms.Resize(20), transforms.CenterCrop(20),
                              transforms.ToTensor()])
    out = VilaPretrain(processor=pre)(raw_doc(1, matched=[0]))
    assert out["images"].shape == (1, 3, 20, 20)
    hf = pytest.importorskip("transformers")
    clip = hf.CLIPImageProcessor(size={"shortest_edge": 24},
                                 crop_size={"height": 24, "width": 24})
    out = VilaPretrain(processor=clip)(raw_doc(2, matched=[0, 1]))
    assert out["images"].shape == (2, 3, 24, 24)


def test_collate_through_workers(bridge_output, tiny_tokenizer):
    root, _ = bridge_output
    ds = ShardDataset(str(root), transform=VilaPretrain(
        tokenizer=tiny_tokenizer, processor=DefaultProcessor(16), max_length=24),
        rank=0, world_size=1, seed=3)
    loader = DataLoader(ds, batch_size=4, num_workers=2,
                        collate_fn=Collator(tiny_tokenizer.pad_token_id))
    seen = 0
    for batch in loader:
        ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
        assert ids.shape == labels.shape == mask.shape
        assert torch.equal(labels == -100, (ids == IMG) | (mask == 0))
        per_sample = (ids == IMG).sum(1)
        assert torch.equal(per_sample, batch["num_images"])
        n = int(batch["num_images"].sum())
        assert (batch["images"] is None and n == 0) or batch["images"].shape[0] == n
        seen += len(ids)
    assert seen == 27

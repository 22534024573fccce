"""VILA pre-training samples: escaping, unmatched images, image modes, workers, rows."""

from __future__ import annotations

import json

import pytest
import torch
from bridge_builder import build_pairs, color, jpeg
from PIL import Image
from torch.utils.data import DataLoader

from trainer_bridge import Collator, ImageProcessor, ShardDataset, VilaPretrain
from trainer_bridge.images import DefaultProcessor, expand2square
from trainer_bridge.samples import build_interleaved

IMG = -200


def raw_doc(n_images=3, texts=None, matched=None):
    texts = texts or ["one.", "two <image> here.", "three."]
    matched = matched if matched is not None else [2, 0, 2][:n_images]
    images, raw = [], {"__key__": "k", "__url__": "u"}
    for j in range(n_images):
        images.append({"url": f"http://x/{j}", "member": f"{j}.jpg",
                       "matched_text_index": matched[j], "status": "ok"})
        raw[f"{j}.jpg"] = jpeg(color(0, j))
    raw["json"] = json.dumps({"texts": texts, "images": images, "source": "mmc4"}).encode()
    return raw


def test_first_max_images_in_document_order_then_sorted():
    s = build_interleaved(raw_doc(3, matched=[2, 1, 0]), max_num_images=2)
    assert s.images == [jpeg(color(0, 1)), jpeg(color(0, 0))]  # image 2 cut first
    assert s.text.count("<image>") == 2 and s.skipped_images == 1


def test_unmatched_image_is_left_out_with_its_token():
    s = build_interleaved(raw_doc(2, matched=[5, None]))
    assert s.images == [] and "<image>" not in s.text and s.skipped_images == 2


def test_image_modes():
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    pad = ImageProcessor("pad", DefaultProcessor(16))(im)
    assert pad.shape == (3, 16, 16)
    assert pad[0, 0, 8] < 0.2 and pad[0, 8, 8] > 1.5  # top padded with the mean colour
    assert expand2square(im, (1, 2, 3)).getpixel((0, 0)) == (1, 2, 3)
    resize = ImageProcessor("resize", tower="siglip-384")(im)
    assert resize.shape == (3, 384, 384) and float(resize[0].min()) == pytest.approx(1.0)
    crop = ImageProcessor("crop", tower="clip-336")(im)
    assert crop.shape == (3, 336, 336)
    transforms = pytest.importorskip("torchvision.transforms")  # open_clip-style callable
    pre = transforms.Compose([transforms.Resize(20), transforms.CenterCrop(20),
                              transforms.ToTensor()])
    out = VilaPretrain(processor=pre, image_mode="crop")(raw_doc(1, matched=[0]))
    assert out["images"].shape == (1, 3, 20, 20)
    hf = pytest.importorskip("transformers")
    clip = hf.CLIPImageProcessor(size={"shortest_edge": 24},
                                 crop_size={"height": 24, "width": 24})
    padded = ImageProcessor("pad", clip)(im)
    mean = torch.tensor(clip.image_mean).view(3, 1, 1)
    std = torch.tensor(clip.image_std).view(3, 1, 1)
    corner = padded[:, 0, 0] * std[:, 0, 0] + mean[:, 0, 0]  # back to 0..1: the mean
    assert padded.shape == (3, 24, 24)
    assert torch.allclose(corner, torch.tensor([int(m * 255) / 255 for m in clip.image_mean]),
                          atol=0.02)
    siglip = hf.SiglipImageProcessor(size={"height": 32, "width": 32})
    assert ImageProcessor("resize", siglip)(im).shape == (3, 32, 32)


def test_pairs_through_workers_become_rows(tmp_path, tiny_tokenizer):
    root = tmp_path / "pairs"
    build_pairs(root, n=20)
    ds = ShardDataset(str(root), group_size=4, rank=0, world_size=1, seed=3,
                      transform=VilaPretrain("pairs", tokenizer=tiny_tokenizer,
                                             processor=DefaultProcessor(16)))
    loader = DataLoader(ds, batch_size=2, num_workers=2,
                        collate_fn=Collator(tiny_tokenizer.pad_token_id, model_max_length=5))
    rows = 0
    for batch in loader:
        ids = batch["input_ids"]
        assert ids.shape[0] == 4 * len(batch["__worker__"])  # 4 rows per index
        assert (ids[:, 0] == tiny_tokenizer.bos_token_id).all() and (ids[:, 1] == IMG).all()
        assert batch["num_images"].tolist() == [1] * ids.shape[0]
        assert batch["images"].shape[0] == ids.shape[0] and ids.shape[1] <= 5
        rows += ids.shape[0]
    assert rows == 20

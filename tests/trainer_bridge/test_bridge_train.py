"""A tiny multimodal LM trains on real bridge batches: images go where their tokens are."""

from __future__ import annotations

import torch
from torch import nn

from trainer_bridge import Collator, ResumableLoader, ShardDataset, VilaPretrain
from trainer_bridge.images import DefaultProcessor

IMG = -200


class TinyVLM(nn.Module):
    """Embeddings + image projector + 2 transformer layers + LM head (causal)."""

    def __init__(self, vocab: int, dim: int = 32, image_size: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.vision = nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.Flatten(),
                                    nn.Linear(8 * (image_size // 4) ** 2, dim))
        layer = nn.TransformerEncoderLayer(dim, 2, 64, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(dim, vocab)

    def forward(self, input_ids, images, num_images, attention_mask):
        x = self.embed(input_ids.clamp(min=0))
        is_image = input_ids == IMG
        if images is not None:
            x = x.masked_scatter(is_image.unsqueeze(-1), self.vision(images).to(x.dtype))
        n = input_ids.shape[1]
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        h = self.body(x, mask=causal, src_key_padding_mask=~attention_mask.bool())
        return self.head(h)


def lm_loss(logits, labels):
    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                       labels[:, 1:].reshape(-1), ignore_index=-100)


def test_tiny_model_trains_on_bridge_batches(bridge_output, tiny_tokenizer):
    torch.manual_seed(0)
    root, _ = bridge_output
    ds = ShardDataset(str(root), rank=0, world_size=1, seed=5, transform=VilaPretrain(
        tokenizer=tiny_tokenizer, processor=DefaultProcessor(16)))
    loader = ResumableLoader(ds, batch_size=4, collate_fn=Collator(
        tiny_tokenizer.pad_token_id, model_max_length=40))
    model = TinyVLM(len(tiny_tokenizer))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = []
    for batch in loader:  # a few real optimizer steps over different batches
        assert int((batch["input_ids"] == IMG).sum()) == int(batch["num_images"].sum())
        loss = lm_loss(model(batch["input_ids"], batch["images"], batch["num_images"],
                             batch["attention_mask"]), batch["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        batches.append(batch)
        if len(batches) == 4:
            break
    fixed = next(b for b in batches if b["images"] is not None)
    losses = []
    for _ in range(25):
        loss = lm_loss(model(fixed["input_ids"], fixed["images"], fixed["num_images"],
                             fixed["attention_mask"]), fixed["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]

"""Text with ``<image>`` tokens -> ``input_ids`` / ``labels``, and batch collation.

Works with any Hugging Face tokenizer (``tokenizer(text, add_special_tokens=...)``
returning ``input_ids``); transformers itself is never imported here. As VILA's
``tokenizer_image_token`` does, the text is split at each image token, the pieces are
tokenized separately, and the image token id (VILA-1: -200) is put between them.
Labels are -100 for image tokens, padding and every untrained span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from trainer_bridge.samples import IMAGE_TOKEN

IGNORE_INDEX = -100
VILA1_IMAGE_TOKEN_ID = -200


@dataclass(frozen=True)
class TokenSpec:
    """How image tokens are written in text and in ``input_ids``."""

    image_token: str = IMAGE_TOKEN
    image_token_id: int = VILA1_IMAGE_TOKEN_ID
    max_length: int | None = None


def encode_with_images(text: str, tokenizer: Any, spec: TokenSpec,
                       add_special_tokens: bool = True) -> list[int]:
    """Token ids of ``text``; each image token becomes ``spec.image_token_id``."""
    ids: list[int] = []
    for i, chunk in enumerate(text.split(spec.image_token)):
        if i > 0:
            ids.append(spec.image_token_id)
        first = add_special_tokens and i == 0
        if chunk or first:
            ids.extend(tokenizer(chunk, add_special_tokens=first)["input_ids"])
    return ids


def encode_segments(segments: Sequence[tuple[str, bool]], tokenizer: Any,
                    spec: TokenSpec) -> tuple[list[int], list[int]]:
    """``(text, trained)`` pieces -> ids and labels (untrained pieces masked)."""
    ids: list[int] = []
    labels: list[int] = []
    for n, (text, trained) in enumerate(segments):
        piece = encode_with_images(text, tokenizer, spec, add_special_tokens=(n == 0))
        ids.extend(piece)
        labels.extend(t if trained and t != spec.image_token_id else IGNORE_INDEX
                      for t in piece)
    return ids, labels


def truncate(ids: list[int], labels: list[int], spec: TokenSpec) -> tuple[list[int], list[int]]:
    """Cut to ``spec.max_length``; trailing image tokens go too (nothing follows them
    to learn from; VILA does the same). The caller keeps the first ``count`` images."""
    if spec.max_length is not None and len(ids) > spec.max_length:
        ids, labels = ids[:spec.max_length], labels[:spec.max_length]
    while ids and ids[-1] == spec.image_token_id:
        ids, labels = ids[:-1], labels[:-1]
    return ids, labels


def count_images(ids: Sequence[int], spec: TokenSpec) -> int:
    return sum(1 for t in ids if t == spec.image_token_id)


class Collator:
    """Pads ``input_ids`` (pad id) and ``labels`` (-100), builds the attention mask,
    concatenates every sample's images into one ``[total, C, H, W]`` tensor and keeps
    ``num_images`` per sample (the model splits the stack by it). Other keys become
    lists. Picklable, so it works in DataLoader workers."""

    def __init__(self, pad_token_id: int = 0) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "input_ids" in batch[0]:
            ids = [torch.as_tensor(b["input_ids"], dtype=torch.long) for b in batch]
            labels = [torch.as_tensor(b["labels"], dtype=torch.long) for b in batch]
            out["input_ids"] = pad_sequence(ids, batch_first=True,
                                            padding_value=self.pad_token_id)
            out["labels"] = pad_sequence(labels, batch_first=True, padding_value=IGNORE_INDEX)
            mask = [torch.ones(len(t), dtype=torch.long) for t in ids]
            out["attention_mask"] = pad_sequence(mask, batch_first=True, padding_value=0)
        if "images" in batch[0]:
            stacks = [b["images"] for b in batch if len(b["images"])]
            out["images"] = torch.cat(stacks) if stacks else None
            out["num_images"] = torch.tensor([len(b["images"]) for b in batch])
        for key in batch[0]:
            if key not in ("input_ids", "labels", "images"):
                out[key] = [b[key] for b in batch]
        return out

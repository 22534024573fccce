"""Image bytes -> tensors, through the caller's processor or a light default.

A processor is either a Hugging Face image processor (called with
``return_tensors="pt"``; ``pixel_values`` taken) or any callable PIL image -> tensor,
such as open_clip's ``preprocess``. The default resizes the short side, centre-crops
to a square and normalizes with CLIP's mean/std; VILA-1 uses 336 px
(``openai/clip-vit-large-patch14-336``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VILA1_SIZE = 336


def decode(data: bytes) -> Image.Image:
    """RGB PIL image (raises on bytes that are not an image)."""
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


class DefaultProcessor:
    """Resize short side to ``size``, centre crop ``size`` x ``size``, normalize."""

    def __init__(self, size: int = VILA1_SIZE, mean=CLIP_MEAN, std=CLIP_STD) -> None:
        self.size = size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        w, h = image.size
        scale = self.size / min(w, h)
        nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        image = image.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        return (tensor - self.mean) / self.std


def as_tensor_fn(processor: Any | None) -> Callable[[Image.Image], torch.Tensor]:
    """One calling convention for HF image processors, open_clip transforms and None."""
    if processor is None:
        return DefaultProcessor()
    if hasattr(processor, "model_input_names") or hasattr(processor, "image_mean"):
        def hf(image: Image.Image) -> torch.Tensor:
            return processor(images=image, return_tensors="pt")["pixel_values"][0]
        return hf
    return processor


def to_tensors(images: list[Image.Image],
               fn: Callable[[Image.Image], torch.Tensor]) -> torch.Tensor:
    """Stack of processed images ``[n, C, H, W]`` (``n`` may be 0)."""
    if not images:
        return torch.empty(0)
    return torch.stack([fn(im) for im in images])

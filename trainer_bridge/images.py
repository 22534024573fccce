"""Image bytes -> tensors the way VILA's ``process_image`` prepares them.

``ImageProcessor(mode, processor=None, tower=...)``; ``mode`` is VILA's
``--image_aspect_ratio``:

- ``pad``: paste the image centred on a square of the processor's mean colour
  (``int(mean * 255)``), then the processor (VILA-1 with CLIP ViT-L/14-336).
- ``resize``: resize to the tower's square input size with no crop, then the processor
  (VILA-1.5 ``--image_aspect_ratio resize``: SigLIP-384, InternViT-448).
- ``crop``: the processor alone (CLIP: short side to the size, centre crop).

``processor`` is a Hugging Face image processor (``image_mean``, ``crop_size`` or
``size``; called with ``return_tensors="pt"``), any callable PIL image -> tensor (open_clip's
``preprocess``; ``pad``/``resize`` then need ``tower`` for the mean and size), or None
for a built-in one configured by ``tower`` (``TOWERS``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VILA1_SIZE = 336
Mode = Literal["pad", "resize", "crop"]


@dataclass(frozen=True)
class Tower:
    """Input size and normalisation of a vision tower's image processor."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


TOWERS = {  # from each tower's preprocessor_config.json
    "clip-336": Tower(336, CLIP_MEAN, CLIP_STD),  # openai/clip-vit-large-patch14-336 (VILA-1)
    "siglip-384": Tower(384, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # siglip-so400m-patch14-384
    "internvit-448": Tower(448, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # InternViT-6B-448px
    "siglip-448": Tower(448, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # NVILA's SigLIP at 448
}


def decode(data: bytes) -> Image.Image:
    """RGB PIL image (raises on bytes that are not a complete image)."""
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def expand2square(image: Image.Image, background: tuple[int, ...]) -> Image.Image:
    """VILA's ``expand2square``: the image centred on a square of ``background``."""
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    result = Image.new(image.mode, (side, side), background)
    result.paste(image, ((side - w) // 2, (side - h) // 2))
    return result


def _normalize(image: Image.Image, tower: Tower) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean = torch.tensor(tower.mean).view(3, 1, 1)
    std = torch.tensor(tower.std).view(3, 1, 1)
    return (tensor - mean) / std


class DefaultProcessor:
    """Built-in processor for a tower: ``crop`` (short side, centre crop, like CLIP's)
    or a plain square resize (``square=True``, like SigLIP's); bicubic, normalised."""

    def __init__(self, size: int = VILA1_SIZE, mean=CLIP_MEAN, std=CLIP_STD,
                 square: bool = False) -> None:
        self.tower = Tower(size, tuple(mean), tuple(std))
        self.size, self.square = size, square
        self.image_mean = list(mean)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        s = self.size
        if self.square:
            return _normalize(image.resize((s, s), Image.BICUBIC), self.tower)
        w, h = image.size
        scale = s / min(w, h)
        nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
        image = image.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - s) // 2, (nh - s) // 2
        return _normalize(image.crop((left, top, left + s, top + s)), self.tower)


def _is_hf(processor: Any) -> bool:
    return hasattr(processor, "model_input_names") or hasattr(processor, "preprocess")


def _hf_size(processor: Any) -> tuple[int, int]:
    """(height, width) VILA resizes to: ``crop_size`` (CLIP) else ``size`` (SigLIP)."""
    for attr in ("crop_size", "size"):
        size = getattr(processor, attr, None)
        if size is None:
            continue
        get = size.get if isinstance(size, dict) else (lambda k, s=size: getattr(s, k, None))
        if get("height"):
            return int(get("height")), int(get("width"))
        if get("shortest_edge"):
            return int(get("shortest_edge")), int(get("shortest_edge"))
    raise ValueError(f"cannot tell the input size of {type(processor).__name__}")


class ImageProcessor:
    """PIL image -> ``[C, H, W]`` tensor with VILA's ``pad`` / ``resize`` / ``crop``."""

    def __init__(self, mode: Mode = "resize", processor: Any | None = None,
                 tower: str | Tower | None = None) -> None:
        if mode not in ("pad", "resize", "crop"):
            raise ValueError(f"image mode must be 'pad', 'resize' or 'crop', not {mode!r}")
        if isinstance(tower, str) and tower not in TOWERS:
            raise ValueError(f"tower must be one of {sorted(TOWERS)}, not {tower!r}")
        spec = TOWERS[tower] if isinstance(tower, str) else tower
        if processor is None:  # VILA-1.5's SigLIP-384 for resize, VILA-1's CLIP-336 else
            spec = spec or TOWERS["siglip-384" if mode == "resize" else "clip-336"]
            processor = DefaultProcessor(spec.size, spec.mean, spec.std,
                                         square=(mode == "resize"))
        self.mode, self.processor, self.tower = mode, processor, spec
        self.hf = _is_hf(processor)
        if mode != "crop" and not self.hf and spec is None and not isinstance(
                processor, DefaultProcessor):
            raise ValueError(f"mode {mode!r} with a plain callable needs tower= (mean, size)")

    def _mean(self) -> tuple[float, ...]:
        mean = getattr(self.processor, "image_mean", None)
        return tuple(mean) if mean is not None else self.tower.mean

    def _square(self) -> tuple[int, int]:
        if self.hf:
            return _hf_size(self.processor)
        size = self.tower.size if self.tower else self.processor.size
        return size, size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.mode == "resize":
            h, w = self._square()
            image = image.resize((w, h))  # Pillow's default filter, as VILA calls it
        elif self.mode == "pad":
            image = expand2square(image, tuple(int(x * 255) for x in self._mean()))
        if self.hf:
            return self.processor(images=image, return_tensors="pt")["pixel_values"][0]
        return self.processor(image)


def as_tensor_fn(processor: Any | None, mode: Mode = "resize",
                 tower: str | Tower | None = None) -> Callable[[Image.Image], torch.Tensor]:
    """One calling convention for HF image processors, open_clip transforms and None."""
    if isinstance(processor, ImageProcessor):
        return processor
    return ImageProcessor(mode, processor, tower)


def to_tensors(images: list[Image.Image],
               fn: Callable[[Image.Image], torch.Tensor]) -> torch.Tensor:
    """Stack of processed images ``[n, C, H, W]`` (``n`` may be 0)."""
    if not images:
        return torch.empty(0)
    return torch.stack([fn(im) for im in images])

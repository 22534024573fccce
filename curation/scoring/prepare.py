"""Encoded image bytes -> the model's input, decoded at the size the model needs.

Why this is not simply ``preprocess(Image.open(...))``: a full decode of an 800 px
JPEG followed by a bicubic resize of every pixel costs ~7 ms, so one CPU thread feeds
~150 images/s while a GPU encodes thousands. Three things cut it (same results as the
model's own transform but for the DCT-domain downscale and a level of rounding):

- JPEG is decoded at a reduced size (``Image.draft``: libjpeg's 1/2, 1/4, 1/8 IDCT
  scaling) that is still at least the model's input size;
- the bicubic resize runs through torch's uint8 antialiased kernel (a port of
  Pillow-SIMD: within one level of Pillow's result, ~7x faster than Pillow here);
- the output stays uint8 (H, W, 3); ``ToTensor`` + ``Normalize`` become a per-channel
  table (bit-identical: built by running the model's own two transforms on 0..255),
  applied here on CPU, or on the GPU in the forward's dtype (``normalize_on_device``).

Models whose eval transform is not the usual open_clip ``Resize -> CenterCrop ->
RGB -> ToTensor -> Normalize`` (or the ``squash`` variant) fall back to calling the
transform itself on the (draft-decoded) image. Decoding never uses torch ops on the
fast path except that resize, which runs on the calling thread alone (it does not
split one image across torch's intra-op threads).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

UNDECODABLE = "clip_undecodable"
_TORCH_MODES = {Image.Resampling.BICUBIC: "bicubic", Image.Resampling.BILINEAR: "bilinear"}

_PIL_FILTERS = {
    T.InterpolationMode.BICUBIC: Image.Resampling.BICUBIC,
    T.InterpolationMode.BILINEAR: Image.Resampling.BILINEAR,
    T.InterpolationMode.NEAREST: Image.Resampling.NEAREST,
    T.InterpolationMode.LANCZOS: Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class InputSpec:
    """How to turn a decoded image into the model's input.

    ``short`` is the shortest-side resize target (``None`` for squash); ``crop`` the
    centre crop (height, width); ``lut`` maps uint8 -> normalized float32 per channel
    (exactly what the transform's ToTensor + Normalize give). ``transform`` is set
    when the model's transform is not recognised: it is then called as is."""

    height: int
    width: int
    short: int | None
    resample: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    lut: np.ndarray
    transform: Callable | None = None

    @property
    def fast(self) -> bool:
        return self.transform is None

    @classmethod
    def from_transform(cls, preprocess: Callable) -> InputSpec:
        """Recognise open_clip's eval transform; anything else falls back to it."""
        steps = list(getattr(preprocess, "transforms", []))
        parsed = _parse_steps(steps)
        if parsed is None:
            probe = preprocess(Image.new("RGB", (256, 256)))
            _, h, w = probe.shape
            return cls(h, w, None, Image.Resampling.BICUBIC, (0.0,) * 3, (1.0,) * 3,
                       np.zeros((3, 256), np.float32), transform=preprocess)
        (h, w), short, resample, to_tensor, norm = parsed
        return cls(h, w, short, resample, tuple(float(m) for m in norm.mean),
                   tuple(float(s) for s in norm.std), _channel_table(to_tensor, norm))

    def draft_size(self) -> tuple[int, int]:
        """The smallest (w, h) a JPEG may be draft-decoded to without upsampling
        afterwards: both sides >= the resize target."""
        if self.short is not None:
            return self.short, self.short
        return self.width, self.height


def _parse_steps(steps: list) -> tuple | None:
    """((h, w), short, PIL filter, ToTensor, Normalize) of a recognised transform."""
    if len(steps) < 3 or not isinstance(steps[0], T.Resize):
        return None
    resize, rest = steps[0], steps[1:]
    if resize.max_size is not None or resize.antialias is False \
            or resize.interpolation not in _PIL_FILTERS:
        return None
    size = resize.size if isinstance(resize.size, int) else list(resize.size)
    if isinstance(size, int) or len(size) == 1:  # shortest side, then a centre crop
        short = size if isinstance(size, int) else size[0]
        if not rest or not isinstance(rest[0], T.CenterCrop):
            return None
        crop = tuple(rest[0].size) if not isinstance(rest[0].size, int) \
            else (rest[0].size, rest[0].size)
        if len(crop) == 1:
            crop = (crop[0], crop[0])
        if crop[0] > short or crop[1] > short:
            return None
        rest = rest[1:]
        hw: tuple[int, int] = (int(crop[0]), int(crop[1]))
        short_out: int | None = int(short)
    else:  # squash to (h, w)
        hw, short_out = (int(size[0]), int(size[1])), None
    rest = [s for s in rest if not _is_rgb_convert(s)]
    if len(rest) != 2 or not isinstance(rest[0], T.ToTensor) \
            or not isinstance(rest[1], T.Normalize):
        return None
    return hw, short_out, _PIL_FILTERS[resize.interpolation], rest[0], rest[1]


def _is_rgb_convert(step: object) -> bool:
    if getattr(step, "mode", None) == "RGB" and type(step).__name__ == "MaybeConvertMode":
        return True
    return getattr(step, "__name__", "") == "_convert_to_rgb"


def _channel_table(to_tensor: Callable, norm: Callable) -> np.ndarray:
    """(3, 256) float32: the transform's own output for every uint8 value."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    out = norm(to_tensor(Image.fromarray(ramp, "RGB")))  # (3, 1, 256)
    return np.ascontiguousarray(out[:, 0, :].numpy(), dtype=np.float32)


def open_for_model(data: bytes, spec: InputSpec) -> Image.Image:
    """Decode to RGB; JPEGs at the smallest libjpeg scale that keeps >= model size."""
    img = Image.open(io.BytesIO(data))
    if img.format == "JPEG":
        img.draft("RGB", spec.draft_size())
    img.load()
    return img if img.mode == "RGB" else img.convert("RGB")


def output_geometry(w: int, h: int, spec: InputSpec) -> tuple[int, int, int, int]:
    """(resized w, resized h, crop top, crop left): torchvision's ``Resize`` (long
    side truncated, not rounded) and ``CenterCrop`` arithmetic."""
    if spec.short is None:
        return spec.width, spec.height, 0, 0
    if w <= h:
        new_w, new_h = spec.short, int(spec.short * h / w)
    else:
        new_w, new_h = int(spec.short * w / h), spec.short
    return (new_w, new_h, int(round((new_h - spec.height) / 2.0)),
            int(round((new_w - spec.width) / 2.0)))


def resize_crop(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """RGB image -> (H, W, 3) uint8: resize then centre crop on the same sampling grid
    as torchvision's ``Resize`` + ``CenterCrop`` on a PIL image. Bicubic and bilinear
    run through torch's uint8 antialiased kernel (a port of Pillow-SIMD's: within one
    level of Pillow, ~7x faster than Pillow's own resampler here, one thread per
    call); other filters through Pillow."""
    w, h = img.size
    new_w, new_h, top, left = output_geometry(w, h, spec)
    box = (slice(top, top + spec.height), slice(left, left + spec.width))
    if (new_w, new_h) == (w, h):
        return np.asarray(img)[box]
    mode = _TORCH_MODES.get(spec.resample)
    if mode is None:
        return np.asarray(img.resize((new_w, new_h), spec.resample))[box]
    pixels = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None]  # channels-last view
    out = F.interpolate(pixels, size=(new_h, new_w), mode=mode, antialias=True)
    return out[0, :, box[0], box[1]].permute(1, 2, 0).numpy()


def decode_uint8(data: bytes, spec: InputSpec) -> np.ndarray:
    """Bytes -> (H, W, 3) uint8 model-sized pixels (fast path only)."""
    with open_for_model(data, spec) as img:
        return resize_crop(img, spec)


def normalize_table(pixels: np.ndarray, spec: InputSpec, out: np.ndarray) -> None:
    """(H, W, 3) uint8 -> ``out`` (3, H, W) float32 through the per-channel table."""
    for c in range(3):
        np.take(spec.lut[c], pixels[:, :, c], out=out[c])


def normalize_on_device(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                        dtype: torch.dtype) -> torch.Tensor:
    """(B, H, W, 3) uint8 on the device -> (B, 3, H, W) normalized, in ``dtype``: the
    ops of ToTensor + Normalize in float32, then the cast. ``mean``/``std`` are
    (1, 3, 1, 1) tensors already on the device (making them here would copy from
    the host and wait for the GPU's queue)."""
    x = pixels.permute(0, 3, 1, 2).float().div_(255).sub_(mean).div_(std)
    return x.to(dtype).contiguous()


def channel_stats(spec: InputSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The transform's mean and std as (1, 3, 1, 1) float32 tensors on ``device``."""
    return (torch.tensor(spec.mean, device=device).view(1, 3, 1, 1),
            torch.tensor(spec.std, device=device).view(1, 3, 1, 1))


def prepare_image(data: bytes, spec: InputSpec) -> torch.Tensor:
    """Bytes -> (3, H, W) float32 model input (one image; tests and simple callers)."""
    if not spec.fast:
        with open_for_model(data, spec) as img:
            return spec.transform(img)  # type: ignore[misc]
    out = np.empty((3, spec.height, spec.width), np.float32)
    normalize_table(decode_uint8(data, spec), spec, out)
    return torch.from_numpy(out)


def decode_into(data: bytes, spec: InputSpec, buffer: torch.Tensor, row: int) -> str | None:
    """Decode ``data`` into ``buffer[row]``: uint8 (B, H, W, 3) or float32 (B, 3, H, W).
    Returns None, or the decoder's error text (bad bytes are a reason, not a crash;
    running out of memory is not bad data and raises)."""
    try:
        if not spec.fast:
            with open_for_model(data, spec) as img:
                buffer[row].copy_(spec.transform(img))  # type: ignore[misc]
        elif buffer.dtype == torch.uint8:
            buffer.numpy()[row] = decode_uint8(data, spec)
        else:
            normalize_table(decode_uint8(data, spec), spec, buffer.numpy()[row])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder error is a reason
        return f"{type(exc).__name__}: {exc}"
    return None

"""Decoding at the model's size: the same pixels as the model's own transform (up to
resampling only the cropped region), reduced-size JPEG decoding, and the fallback
for transforms it does not recognise."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from curation.demo.corpus import DATA as DEMO
from curation.scoring.prepare import (
    InputSpec,
    decode_into,
    open_for_model,
    prepare_image,
)

PHOTOS = sorted((DEMO / "images").glob("*.jpg"))[::3]
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def clip_transform(size: int = 224) -> T.Compose:
    """open_clip's eval transform for a square CLIP (written out independently)."""
    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
                      T.CenterCrop(size), T.ToTensor(), T.Normalize(MEAN, STD)])


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(path, size: tuple[int, int]) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB").resize(size, Image.Resampling.LANCZOS)


LEVEL = 1 / 255 / min(STD)  # one uint8 step after Normalize


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (300, 300), (1000, 257),
                                  (224, 500)])
def test_same_pixels_as_the_model_transform(size):
    """PNG (no reduced decode): only the restricted resampling may round a pixel."""
    transform = clip_transform()
    spec = InputSpec.from_transform(transform)
    assert spec.fast and (spec.height, spec.width, spec.short) == (224, 224, 224)
    for path in PHOTOS:
        data = encoded(photo(path, size), "PNG")
        ours = prepare_image(data, spec)
        ref = transform(Image.open(io.BytesIO(data)).convert("RGB"))
        diff = (ours - ref).abs()
        assert diff.max() <= 2.01 * LEVEL
        assert (diff > 0).float().mean() < 0.01


def test_channel_table_is_exactly_to_tensor_and_normalize():
    transform = clip_transform(32)
    spec = InputSpec.from_transform(transform)
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(pixels), "PNG")
    ours = prepare_image(data, spec)
    ref = T.Normalize(MEAN, STD)(T.ToTensor()(Image.fromarray(pixels)))
    assert torch.equal(ours, ref)  # 32 px in, 32 px out: no resampling at all


def test_jpeg_is_decoded_at_a_reduced_size_still_covering_the_input():
    spec = InputSpec.from_transform(clip_transform())
    data = encoded(photo(PHOTOS[0], (800, 600)), "JPEG", quality=90)
    with open_for_model(data, spec) as img:
        assert img.size == (400, 300)  # libjpeg 1/2 scale: short side 300 >= 224
    small = encoded(photo(PHOTOS[0], (400, 300)), "JPEG", quality=90)
    with open_for_model(small, spec) as img:
        assert img.size == (400, 300)  # 1/2 would give 150 < 224: full size


def test_reduced_jpeg_decode_stays_close_to_the_full_decode():
    transform = clip_transform()
    spec = InputSpec.from_transform(transform)
    for path in PHOTOS:
        data = encoded(photo(path, (1200, 900)), "JPEG", quality=90)
        full = transform(Image.open(io.BytesIO(data)).convert("RGB"))
        diff = (prepare_image(data, spec) - full).abs()
        assert diff.mean() < 2 * LEVEL  # on average within two uint8 steps


def test_unrecognised_transform_is_called_as_is():
    transform = T.Compose([T.Resize((50, 70)), T.Grayscale(3), T.ToTensor()])
    spec = InputSpec.from_transform(transform)
    assert not spec.fast and (spec.height, spec.width) == (50, 70)
    data = encoded(photo(PHOTOS[1], (200, 150)), "PNG")
    expect = transform(Image.open(io.BytesIO(data)).convert("RGB"))
    assert torch.equal(prepare_image(data, spec), expect)
    buffer = torch.zeros((2, 3, 50, 70))
    assert decode_into(data, spec, buffer, 1) is None
    assert torch.equal(buffer[1], expect)


def test_bad_bytes_are_a_reason_not_a_crash():
    spec = InputSpec.from_transform(clip_transform(32))
    buffer = torch.zeros((1, 32, 32, 3), dtype=torch.uint8)
    err = decode_into(b"\xff\xd8\xff\xe0 truncated", spec, buffer, 0)
    assert err is not None and "Error" in err
    good = encoded(photo(PHOTOS[0], (64, 48)), "JPEG")
    assert decode_into(good, spec, buffer, 0) is None
    assert buffer.float().std() > 0

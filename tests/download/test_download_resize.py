"""Decode / orient / resize / re-encode on real JPEGs and synthetic edge cases."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from curation.demo.corpus import DATA
from curation.download.config import DownloadConfig
from curation.download.resize import process_image

JPEG = (DATA / "images" / "astronaut_b.jpg").read_bytes()  # 268 x 384


def png(size=(300, 200), mode="RGBA", color=(0, 0, 255, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_no_resize_keeps_original_bytes():
    r = process_image(JPEG, DownloadConfig())
    assert r.reason == "ok" and r.data == JPEG and r.mime == "image/jpeg"
    assert r.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert (r.width, r.height, r.original_width, r.original_height) == (268, 384, 268, 384)


@pytest.mark.parametrize("mode, size, expect", [
    ("shortest", 134, (134, 192)),
    ("longest", 192, (134, 192)),
    ("center_crop", 134, (134, 134)),
    ("shortest", 336, (268, 384)),  # never upscaled by default: original bytes kept
])
def test_resize_modes(mode, size, expect):
    r = process_image(JPEG, DownloadConfig(resize_mode=mode, resize_size=size))
    assert r.reason == "ok" and (r.width, r.height) == expect
    assert decode(r.data).size == expect
    assert (r.original_width, r.original_height) == (268, 384)
    assert (r.data == JPEG) is (expect == (268, 384))


def test_upscale_when_asked():
    r = process_image(JPEG, DownloadConfig(resize_mode="shortest", resize_size=336,
                                           upscale=True))
    assert (r.width, r.height) == (336, 481)


def test_webp_encoding_keeps_alpha():
    r = process_image(png(), DownloadConfig(resize_mode="longest", resize_size=150,
                                            encode_format="webp", encode_quality=80))
    img = decode(r.data)
    assert r.mime == "image/webp" and img.format == "WEBP" and img.size == (150, 100)
    assert img.mode == "RGBA"


def test_jpeg_from_transparent_png_is_white_not_black():
    r = process_image(png(), DownloadConfig(resize_mode="longest", resize_size=150))
    img = decode(r.data)
    assert r.mime == "image/jpeg" and img.mode == "RGB"
    assert min(img.getpixel((75, 50))) > 240


def test_format_outside_keep_list_is_reencoded():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(buf, "BMP")
    r = process_image(buf.getvalue(), DownloadConfig())
    assert r.reason == "ok" and r.mime == "image/jpeg" and decode(r.data).format == "JPEG"


def test_bounds_refused_before_decoding():
    assert process_image(JPEG, DownloadConfig(max_pixels=1000)).reason == "too_many_pixels"
    small = process_image(JPEG, DownloadConfig(min_width=300))
    assert small.reason == "too_small" and small.original_width == 268


@pytest.mark.parametrize("data, reason", [
    (b"", "not_an_image"),
    (b"<html></html>", "not_an_image"),
    (JPEG[:200], "decode_error"),
    (JPEG[: len(JPEG) // 2], "decode_error"),
    (png()[:60], "decode_error"),
])
def test_broken_inputs(data, reason):
    assert process_image(data, DownloadConfig()).reason == reason


@pytest.mark.parametrize("name, corner", [("area", 255), ("lanczos", None)])
def test_area_filter_averages_exactly(name, corner):
    from curation.download.resize import _resize

    img = Image.new("L", (8, 8), 0)
    img.paste(255, (0, 0, 4, 4))  # one white quadrant
    cfg = DownloadConfig(resize_mode="shortest", resize_size=2, resize_filter=name)
    out = _resize(img, (2, 2), cfg)
    pixels = [out.getpixel((x, y)) for y in range(2) for x in range(2)]
    if corner is not None:  # each output pixel is the mean of the 4x4 block it covers
        assert pixels == [255, 0, 0, 0]
    else:  # lanczos rings across the edge: not a plain block mean
        assert pixels != [255, 0, 0, 0]

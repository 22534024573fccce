"""Bytes -> verified, oriented, optionally resized and re-encoded image.

Order matters for safety and speed: the header is read first, so decompression
bombs (``max_pixels``) and images under the minimum size are refused before any
pixel is decoded; JPEGs that will be shrunk are decoded at a reduced DCT scale
(Pillow ``draft``), which is most of the speed difference with a full decode.
Original bytes are kept when nothing has to change (no resize needed, EXIF says
upright, format in ``keep_formats``); otherwise the image is re-encoded.
Resize modes follow img2dataset: ``longest`` (its keep_ratio_largest), ``shortest``
(keep_ratio), ``center_crop`` (shortest side then a centred square; VILA-1 stores
336 px short side).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from curation.download import reasons
from curation.download.config import DownloadConfig

_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # orientations that swap width and height
_ENCODERS = {"jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
_FILTERS = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
            "area": Image.Resampling.BOX}


@dataclass
class ImageResult:
    reason: str  # reasons.OK or a reason code
    data: bytes | None = None
    mime: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    original_width: int | None = None
    original_height: int | None = None
    detail: str | None = None


def process_image(data: bytes, cfg: DownloadConfig) -> ImageResult:
    """Never raises: a broken or hostile image becomes a reason code."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _process(img, data, cfg)
    except Image.DecompressionBombError as exc:
        return ImageResult(reasons.TOO_MANY_PIXELS, detail=str(exc))
    except UnidentifiedImageError as exc:
        return ImageResult(reasons.NOT_AN_IMAGE, detail=str(exc))
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        return ImageResult(reasons.DECODE_ERROR, detail=repr(exc))
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise odd things
        return ImageResult(reasons.DECODE_ERROR, detail=repr(exc))


def _process(img: Image.Image, data: bytes, cfg: DownloadConfig) -> ImageResult:
    w, h = img.size
    if w * h > cfg.max_pixels:
        return ImageResult(reasons.TOO_MANY_PIXELS, detail=f"{w}x{h} > {cfg.max_pixels} px")
    orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    ow, oh = (h, w) if orientation in _TRANSPOSED else (w, h)
    if ow < cfg.min_width or oh < cfg.min_height:
        return ImageResult(reasons.TOO_SMALL, original_width=ow, original_height=oh,
                           detail=f"{ow}x{oh} < {cfg.min_width}x{cfg.min_height}")
    target = target_size(ow, oh, cfg)
    fmt = img.format
    if target is not None and img.format == "JPEG":
        dw, dh = (target[1], target[0]) if orientation in _TRANSPOSED else target
        img.draft("RGB", (dw, dh))  # DCT-scaled decode, never below the target
    img.load()  # verifies: a truncated file raises here
    unchanged = target is None and orientation in (1, None) and fmt in cfg.keep_formats
    if unchanged:
        out, mime, (width, height) = data, Image.MIME.get(fmt or ""), (w, h)
    else:
        img = ImageOps.exif_transpose(img) if orientation not in (1, None) else img
        if target is not None:
            img = _resize(img, target, cfg)
        out, mime = _encode(img, cfg)
        width, height = img.size
    return ImageResult(reasons.OK, data=out, mime=mime,
                       sha256=hashlib.sha256(out).hexdigest(), width=width, height=height,
                       original_width=ow, original_height=oh)


def target_size(w: int, h: int, cfg: DownloadConfig) -> tuple[int, int] | None:
    """Size after the scale step of ``resize_mode`` (before any crop), or None when
    the image stays as it is."""
    if cfg.resize_mode == "none":
        return None
    side = max(w, h) if cfg.resize_mode == "longest" else min(w, h)
    crop = cfg.resize_mode == "center_crop" and w != h
    if not crop and (side == cfg.resize_size or (side < cfg.resize_size
                                                 and not cfg.upscale)):
        return None
    if side < cfg.resize_size and not cfg.upscale:  # crop only, at the current scale
        return w, h
    scale = cfg.resize_size / side
    return max(1, round(w * scale)), max(1, round(h * scale))


def _resize(img: Image.Image, target: tuple[int, int], cfg: DownloadConfig) -> Image.Image:
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if _has_alpha(img) else "RGB")
    if img.size != target:
        shrink = target[0] <= img.width and target[1] <= img.height
        method = _FILTERS[cfg.resize_filter] if shrink else Image.Resampling.LANCZOS
        img = img.resize(target, method, reducing_gap=3.0)
    if cfg.resize_mode == "center_crop":
        side = min(cfg.resize_size, *img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    return img


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def _encode(img: Image.Image, cfg: DownloadConfig) -> tuple[bytes, str]:
    fmt, mime = _ENCODERS[cfg.encode_format]
    if fmt == "JPEG" or not _has_alpha(img):
        img = _flatten(img)
    elif img.mode != "RGBA":
        img = img.convert("RGBA")
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=cfg.encode_quality)
    return buf.getvalue(), mime


def _flatten(img: Image.Image) -> Image.Image:
    """RGB for JPEG: transparent pixels become white, not black."""
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img if img.mode in ("RGB", "L") else img.convert("RGB")

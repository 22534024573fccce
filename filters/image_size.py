"""Drop images smaller than ``min_width`` x ``min_height`` (or larger than
``max_side``), from the stored size.

MMC4 (Zhu et al. 2023, section 2): width and height >= 150 px. OBELICS uses
150-20000 px sides (``max_side: 20000``). Judged on ``original_width/height`` (the
image as published, before any resize for storage), else ``width/height``; an image
whose size is not known yet (not downloaded) is left for a later stage.
"""

from __future__ import annotations

from pydantic import Field

from curation.document import Document, ImageRecord
from filters.base import ImageFilter, ImageFilterConfig

TOO_SMALL = "too_small"
TOO_LARGE = "too_large"


class ImageSizeConfig(ImageFilterConfig):
    min_width: int = Field(150, ge=0)
    min_height: int = Field(150, ge=0)
    max_side: int | None = Field(None, ge=1)


def known_size(im: ImageRecord) -> tuple[int, int] | None:
    if im.original_width and im.original_height:
        return im.original_width, im.original_height
    if im.width and im.height:
        return im.width, im.height
    return None


class ImageSizeFilter(ImageFilter):
    name = "image_size"
    Config = ImageSizeConfig
    config: ImageSizeConfig

    def check_image(self, im: ImageRecord, doc: Document) -> str | None:
        size = known_size(im)
        if size is None:
            return None
        w, h = size
        cfg = self.config
        if w < cfg.min_width or h < cfg.min_height:
            return TOO_SMALL
        if cfg.max_side is not None and max(w, h) > cfg.max_side:
            return TOO_LARGE
        return None

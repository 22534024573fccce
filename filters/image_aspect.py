"""Drop images whose aspect ratio (width / height) is outside ``[min_ratio, max_ratio]``.

MMC4 (Zhu et al. 2023, section 2): aspect ratio between 0.5 and 2 (banners and
thin strips are rarely content). OBELICS uses the same bound (<= 2 either way).
Images whose size is not known yet are left for a later stage.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from curation.document import Document, ImageRecord
from filters.base import ImageFilter, ImageFilterConfig
from filters.image_size import known_size

BAD_ASPECT = "bad_aspect_ratio"


class ImageAspectConfig(ImageFilterConfig):
    min_ratio: float = Field(0.5, gt=0)
    max_ratio: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ImageAspectConfig:
        if self.min_ratio > self.max_ratio:
            raise ValueError("min_ratio must not exceed max_ratio")
        return self


class ImageAspectFilter(ImageFilter):
    name = "image_aspect"
    Config = ImageAspectConfig
    config: ImageAspectConfig

    def check_image(self, im: ImageRecord, doc: Document) -> str | None:
        size = known_size(im)
        if size is None:
            return None
        ratio = size[0] / size[1]
        return None if self.config.min_ratio <= ratio <= self.config.max_ratio \
            else BAD_ASPECT

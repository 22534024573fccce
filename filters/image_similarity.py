"""Drop images that match no sentence: best CLIP similarity below ``min_similarity``.

Threshold 0.15 from MMC4 (Zhu et al. 2023, section 2: images whose CLIP ViT-L/14
similarity to every sentence is below 0.15 are discarded). Cuts on the scores that
``clip_score`` stored (``similarities``, else ``matched_sim``); an image without
any score is dropped as ``not_scored`` (the pipeline scored nothing for it).
"""

from __future__ import annotations

from pydantic import Field

from curation.document import Document, ImageRecord
from filters.base import ImageFilter, ImageFilterConfig

LOW_SIMILARITY = "low_similarity"
NOT_SCORED = "not_scored"


class ImageSimilarityConfig(ImageFilterConfig):
    min_similarity: float = Field(0.15, ge=-1.0, le=1.0)


def best_similarity(im: ImageRecord) -> float | None:
    if im.similarities:
        return max(im.similarities)
    return im.matched_sim


class ImageSimilarityFilter(ImageFilter):
    name = "image_similarity"
    Config = ImageSimilarityConfig
    config: ImageSimilarityConfig

    def check_image(self, im: ImageRecord, doc: Document) -> str | None:
        best = best_similarity(im)
        if best is None:
            return NOT_SCORED
        return LOW_SIMILARITY if best < self.config.min_similarity else None

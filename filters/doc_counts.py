"""Drop documents with too few or too many images or sentences.

Defaults are mmc4-core's (Zhu et al. 2023, section 2 / allenai/mmc4 README): 2-15
images and 4-40 sentences. Images counted are the live ones (``pending`` or
``ok``), so the filter also works before download; sentences are the non-empty texts.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from curation.document import Document
from curation.scoring.assign import is_empty
from curation.stage import StageConfig
from filters.base import DocFilter, live_images


class DocCountsConfig(StageConfig):
    min_images: int = Field(2, ge=0)
    max_images: int | None = Field(15, ge=0)
    min_sentences: int = Field(4, ge=0)
    max_sentences: int | None = Field(40, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DocCountsConfig:
        for lo, hi in ((self.min_images, self.max_images),
                       (self.min_sentences, self.max_sentences)):
            if hi is not None and lo > hi:
                raise ValueError("a minimum exceeds its maximum")
        return self


def _bound(n: int, lo: int, hi: int | None, what: str) -> str | None:
    if n < lo:
        return f"too_few_{what}"
    if hi is not None and n > hi:
        return f"too_many_{what}"
    return None


class DocCountsFilter(DocFilter):
    name = "doc_counts"
    Config = DocCountsConfig
    config: DocCountsConfig

    def check_doc(self, doc: Document) -> str | None:
        cfg = self.config
        sentences = sum(not is_empty(t) for t in doc.texts)
        return (_bound(len(live_images(doc)), cfg.min_images, cfg.max_images, "images")
                or _bound(sentences, cfg.min_sentences, cfg.max_sentences, "sentences"))

"""Base classes for filters: a subclass says "keep" (None) or a reason code; the base
drops the record with that reason, counts kept and dropped-by-reason, and keeps the
document consistent afterwards.

Image filters see every live image (``pending`` before download, ``ok`` after), so
URL rules can run before any byte is fetched. When a filter drops an image of a
scored document, the MMC4 assignment is redone over the images left (from stored
similarities, no CLIP), and a document left without images is dropped as
``no_images`` unless ``keep_text_only``.
"""

from __future__ import annotations

from collections import Counter

from curation.document import IMAGE_OK, IMAGE_PENDING, Document, ImageRecord
from curation.scoring.assign import assign_document
from curation.stage import Stage, StageConfig

LIVE = frozenset({IMAGE_PENDING, IMAGE_OK})
NO_IMAGES = "no_images"
KEPT = "kept"


def live_images(doc: Document) -> list[ImageRecord]:
    return [im for im in doc.images if im.status in LIVE]


class FilterStage(Stage):
    """Counts every decision: ``counts["kept"]`` and ``counts[reason]``."""

    def __init__(self, config: StageConfig | None = None) -> None:
        super().__init__(config)
        self.counts: Counter[str] = Counter()

    def record(self, reason: str | None) -> str | None:
        self.counts[reason or KEPT] += 1
        return reason


class ImageFilterConfig(StageConfig):
    keep_text_only: bool = False  # keep documents whose images were all dropped
    reassign: bool = True  # redo the MMC4 assignment over the images left


class ImageFilter(FilterStage):
    """Subclasses implement ``check_image``."""

    Config = ImageFilterConfig
    config: ImageFilterConfig

    def check_image(self, im: ImageRecord, doc: Document) -> str | None:
        raise NotImplementedError

    def process_kept(self, docs: list[Document]) -> None:
        for doc in docs:
            dropped = 0
            for im in live_images(doc):
                reason = self.record(self.check_image(im, doc))
                if reason:
                    im.drop(reason, self.name)
                    dropped += 1
            if dropped:
                self._after_drops(doc)

    def _after_drops(self, doc: Document) -> None:
        if self.config.reassign:
            assign_document(doc)
        if not live_images(doc) and not self.config.keep_text_only:
            doc.drop(NO_IMAGES, self.name)
            self.counts[f"doc:{NO_IMAGES}"] += 1


class DocFilter(FilterStage):
    """Subclasses implement ``check_doc``."""

    def check_doc(self, doc: Document) -> str | None:
        raise NotImplementedError

    def process_kept(self, docs: list[Document]) -> None:
        for doc in docs:
            reason = self.record(self.check_doc(doc))
            if reason:
                doc.drop(reason, self.name)

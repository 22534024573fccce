"""Drop images whose URL contains a word that marks page furniture, not content.

Words from MMC4 (Zhu et al. 2023, section 2): logo, button, icon, plugin, widget,
matched case-insensitively anywhere in the URL (as MMC4 does). Works before
download, so such images are never fetched.
"""

from __future__ import annotations

from pydantic import Field

from curation.document import Document, ImageRecord
from filters.base import ImageFilter, ImageFilterConfig

URL_WORD = "url_word"
MMC4_WORDS = ["logo", "button", "icon", "plugin", "widget"]


class UrlWordsConfig(ImageFilterConfig):
    words: list[str] = Field(default_factory=lambda: list(MMC4_WORDS), min_length=1)


class UrlWordsFilter(ImageFilter):
    name = "url_words"
    Config = UrlWordsConfig
    config: UrlWordsConfig

    def check_image(self, im: ImageRecord, doc: Document) -> str | None:
        url = (im.url or "").lower()
        return URL_WORD if any(w.lower() in url for w in self.config.words) else None

"""Download stage (minimal first version: sequential urllib; replaced by the async
downloader)."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request

from PIL import Image

from curation.document import IMAGE_OK, Document
from curation.stage import Stage, StageConfig


class DownloadConfig(StageConfig):
    timeout_s: float = 10.0
    allow_hosts: list[str] = []
    drop_documents_without_images: bool = True


class DownloadStage(Stage):
    name = "download"
    Config = DownloadConfig

    def process_kept(self, docs: list[Document]) -> None:
        for doc in docs:
            for im in doc.images:
                if im.status != "pending":
                    continue
                try:
                    with urllib.request.urlopen(im.url, timeout=self.config.timeout_s) as r:
                        data = r.read()
                    with Image.open(io.BytesIO(data)) as img:
                        img.load()
                        im.width, im.height = img.size
                        im.mime = Image.MIME.get(img.format or "", None)
                    im.data, im.num_bytes = data, len(data)
                    im.sha256 = hashlib.sha256(data).hexdigest()
                    im.status = IMAGE_OK
                except urllib.error.HTTPError as exc:
                    im.drop(f"http_{exc.code}", self.name)
                except Exception:  # noqa: BLE001
                    im.drop("error", self.name)
            if doc.images and not doc.kept_images and self.config.drop_documents_without_images:
                doc.drop("no_images", self.name)

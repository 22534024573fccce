"""Build a small real output (shards + manifest parts) with write_output, for the bridge tests.

Units have uneven sizes and shards hold at most 4 samples, so shard sizes differ.
Every document has 3 sentences and 0-3 stored images (plus one dropped image); image
``j`` of document ``i`` is a solid colour ``color(i, j)`` so tests can check order.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from curation.document import IMAGE_OK, Document, ImageRecord, Provenance
from shards.local import write_output
from shards.pack import ShardLimits

UNIT_SIZES = (7, 3, 12, 5)  # 27 documents -> shards of 4,3 | 3 | 4,4,4 | 4,1
TOTAL = sum(UNIT_SIZES)


def color(i: int, j: int) -> tuple[int, int, int]:
    return (40 * j + 20, (i * 37) % 200 + 20, 200 - 40 * j)


def jpeg(rgb, size=(24, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def make_doc(i: int, source: str = "mmc4") -> Document:
    """Images matched to sentences in reverse order (2, 1, 0) to test reordering."""
    n_images = i % 4  # 0..3 stored images
    images = []
    for j in range(n_images):
        im = ImageRecord(url=f"http://h/{i}/{j}.jpg", matched_text_index=(n_images - 1 - j),
                         matched_sim=0.3)
        im.status, im.data, im.mime = IMAGE_OK, jpeg(color(i, j)), "image/jpeg"
        images.insert(len(images), im)
    dropped = ImageRecord(url=f"http://h/{i}/x.jpg", matched_text_index=0)
    dropped.drop("http_404", "download")
    images.insert(1 if images else 0, dropped)
    texts = [f"doc {i} first sentence.", f"doc {i} has a literal <image> tag.",
             f"doc {i} third sentence."]
    return Document(doc_id=f"doc{i:04d}", source=source, url=f"http://h/{i}",
                    texts=texts, images=images,
                    provenance=Provenance(file="in.jsonl", line=i + 1),
                    metadata={"id": 1000 + i})


def build_output(root: Path, unit_sizes=UNIT_SIZES, source: str = "mmc4",
                 storage_options: dict | None = None, out: str | None = None) -> list[str]:
    """Write the units; return every sample key in write order."""
    target = out or str(root)
    keys, i = [], 0
    units = {}
    for u, size in enumerate(unit_sizes):
        unit = f"{u:05d}-00000"
        units[unit] = [make_doc(i + k, source) for k in range(size)]
        keys.extend(f"{unit}-{k:06d}" for k in range(size))
        i += size
    write_output(units, target, ShardLimits(max_samples=4), storage_options=storage_options,
                 fill_across_units=False)
    return keys


def build_pairs(root: Path | None, n: int = 21, out: str | None = None,
                storage_options: dict | None = None) -> list[str]:
    """A COYO-style output: one caption, one image per document."""
    keys = []
    units = {}
    for u, size in enumerate((n - n // 3, n // 3)):
        unit = f"{u:05d}-00000"
        docs = []
        for k in range(size):
            i = len(keys) + k
            im = ImageRecord(url=f"http://c/{i}.jpg", matched_text_index=0, matched_sim=0.31)
            im.status, im.data, im.mime = IMAGE_OK, jpeg(color(i, 0)), "image/jpeg"
            docs.append(Document(doc_id=f"pair{i:04d}", source="coyo", url=None,
                                 texts=[f"a photo number {i}"], images=[im],
                                 provenance=Provenance(file="c.parquet", row=i),
                                 metadata={"id": 5000 + i}))
        units[unit] = docs
        keys.extend(f"{unit}-{k:06d}" for k in range(size))
    write_output(units, out or str(root), ShardLimits(max_samples=4),
                 storage_options=storage_options, fill_across_units=False)
    return keys

"""Build VILA pre-training text + image lists from raw shard samples.

Follows VILA's own loaders (NVlabs/VILA ``llava/data/dataset.py``):

- ``LazyMMC4Dataset``: a literal ``<image>`` in the text becomes ``<IMAGE>``; the first
  6 images in document order are kept, then ordered by ``matched_text_index``;
  ``<image>`` is prepended to each matched sentence; sentences are joined by a space,
  spaces around ``<image>`` removed, the tokenizer's EOS appended.
- ``LazyCoyoDataset``: ``<image>`` + caption + EOS per pair, 4 pairs per index.

Here a raw sample is what the shard writer stores: ``json`` (Document.to_dict(); kept
images carry ``member``) and one member per kept image. Images whose bytes are
missing or whose ``matched_text_index`` points nowhere are left out together with
their token, so the count of ``<image>`` tokens always equals the image count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

IMAGE_TOKEN = "<image>"
IMAGE_ESCAPE = "<IMAGE>"  # VILA's replacement for a literal <image> in web text
VILA_MAX_IMAGES = 6


@dataclass
class VilaSample:
    """Text with exactly ``len(images)`` image tokens, in the order they appear."""

    text: str
    images: list[bytes]
    key: str | list[str]
    source: str
    skipped_images: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def escape_text(text: str, token: str = IMAGE_TOKEN, replacement: str = IMAGE_ESCAPE) -> str:
    """Make a literal image token in the data unmistakable for a real one."""
    return text.replace(token, replacement)


def document_of(raw: dict[str, Any]) -> dict[str, Any]:
    payload = raw.get("json")
    if payload is None:
        raise ValueError(f"{raw.get('__url__')}#{raw.get('__key__')}: no json member")
    return json.loads(payload) if isinstance(payload, (bytes, str)) else payload


def written_images(raw: dict[str, Any], doc: dict[str, Any]) -> list[tuple[dict, bytes]]:
    """(image record, bytes) of the images stored in the sample, in document order."""
    out = []
    for im in doc.get("images", []):
        member = im.get("member")
        if member and raw.get(member) is not None:
            out.append((im, raw[member]))
    return out


def build_interleaved(raw: dict[str, Any], eos: str = "",
                      max_num_images: int = VILA_MAX_IMAGES,
                      token: str = IMAGE_TOKEN, escape: str = IMAGE_ESCAPE) -> VilaSample:
    """One MMC4-style document as VILA's LazyMMC4Dataset builds it."""
    doc = document_of(raw)
    sentences = [escape_text(t, token, escape) for t in doc.get("texts", [])]
    stored = written_images(raw, doc)
    usable = [(im, data) for im, data in stored
              if isinstance(im.get("matched_text_index"), int)
              and 0 <= im["matched_text_index"] < len(sentences)]
    chosen = usable[:max_num_images]
    chosen.sort(key=lambda pair: pair[0]["matched_text_index"])  # stable: doc order ties
    for im, _ in chosen:
        j = im["matched_text_index"]
        sentences[j] = token + sentences[j]
    text = " ".join(sentences).replace(token + " ", token).replace(" " + token, token)
    return VilaSample(text=text + eos, images=[data for _, data in chosen],
                      key=raw["__key__"], source=doc.get("source", ""),
                      skipped_images=len(stored) - len(chosen))


def build_pairs(raws: list[dict[str, Any]], eos: str = "", token: str = IMAGE_TOKEN,
                escape: str = IMAGE_ESCAPE) -> VilaSample:
    """``<image>caption<eos>`` for each pair, concatenated (VILA packs 4 per index).

    A pair without a stored image contributes its caption without an image token."""
    parts, images, skipped = [], [], 0
    for raw in raws:
        doc = document_of(raw)
        caption = escape_text(" ".join(doc.get("texts", [])), token, escape)
        stored = written_images(raw, doc)
        if stored:
            images.append(stored[0][1])
            skipped += len(stored) - 1
            parts.append(token + caption + eos)
        else:
            parts.append(caption + eos)
    first = document_of(raws[0]).get("source", "") if raws else ""
    return VilaSample(text="".join(parts), images=images,
                      key=[r["__key__"] for r in raws], source=first,
                      skipped_images=skipped)


def drop_image(sample: VilaSample, index: int, token: str = IMAGE_TOKEN) -> VilaSample:
    """Remove image ``index`` and its token (the ``index``-th token in the text)."""
    pieces = sample.text.split(token)
    pieces[index:index + 2] = [pieces[index] + pieces[index + 1]]
    text = token.join(pieces)
    images = sample.images[:index] + sample.images[index + 1:]
    return VilaSample(text=text, images=images, key=sample.key, source=sample.source,
                      skipped_images=sample.skipped_images + 1, metadata=sample.metadata)

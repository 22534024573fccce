"""Build VILA pre-training text + image lists from raw shard samples.

Follows VILA's own loaders (NVlabs/VILA ``llava/data/dataset.py``) over what
``curate export vila`` writes (see ``curation/export``), so the bridge and VILA reading
the export see the same thing:

- ``LazyMMC4Dataset``: a literal ``<image>`` in the text becomes ``<IMAGE>``; the
  images are those the export writes (stored, matched to an existing sentence, and
  decodable: the exporter re-encodes every image and leaves out one that does not
  decode), in document order; the first 6 are kept, then stably ordered by
  ``matched_text_index``; the format's prefix (``<image>`` or ``<image>\\n``) goes
  before each matched sentence; sentences are joined by a space, spaces around
  ``<image>`` removed, the tokenizer's EOS appended.
- ``LazyCoyoDataset``: one sequence per pair, prefix + caption + EOS; the dataset
  groups 4 pairs per index and the collator makes each pair its own batch row.

A raw sample is what the shard writer stores: ``json`` (Document.to_dict(); kept images
carry ``member``) and one member per kept image.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainer_bridge.formats import IMAGE_TOKEN

IMAGE_ESCAPE = "<IMAGE>"  # VILA's replacement for a literal <image> in web text
VILA_MAX_IMAGES = 6


@dataclass
class VilaSample:
    """Text with exactly ``len(images)`` image markers, in the order they appear."""

    text: str
    images: list[Any]  # decoded images (or bytes when no decoder was given)
    key: str
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


def _identity(data: bytes) -> bytes:
    return data


def exported_images(raw: dict[str, Any], doc: dict[str, Any], limit: int,
                    decode: Callable[[bytes], Any] = _identity) -> tuple[list, int]:
    """The first ``limit`` images the export would write, decoded, with their records.

    Returns ``([(record, decoded), ...], skipped)``. Undecodable and unmatched images
    are left out before the cap (the exporter never writes them), so a bad image among
    the first ``limit`` lets the next good one in, as VILA sees the exported data."""
    n_texts = len(doc.get("texts", []))
    chosen, skipped = [], 0
    for im, data in written_images(raw, doc):
        j = im.get("matched_text_index")
        if len(chosen) >= limit or not isinstance(j, int) or not 0 <= j < n_texts:
            skipped += 1
            continue
        try:
            chosen.append((im, decode(data)))
        except Exception:  # any decoder error: the export leaves this image out
            skipped += 1
    return chosen, skipped


def build_interleaved(raw: dict[str, Any], eos: str = "", prefix: str = IMAGE_TOKEN,
                      max_num_images: int = VILA_MAX_IMAGES,
                      decode: Callable[[bytes], Any] = _identity,
                      escape: str = IMAGE_ESCAPE) -> VilaSample:
    """One MMC4-style document as VILA's LazyMMC4Dataset builds it."""
    doc = document_of(raw)
    sentences = [escape_text(t, IMAGE_TOKEN, escape) for t in doc.get("texts", [])]
    chosen, skipped = exported_images(raw, doc, max_num_images, decode)
    chosen.sort(key=lambda pair: pair[0]["matched_text_index"])  # stable: doc order ties
    for im, _ in chosen:  # markers are identical: only the count per sentence matters
        j = im["matched_text_index"]
        sentences[j] = prefix + sentences[j]
    text = " ".join(sentences)
    text = text.replace(IMAGE_TOKEN + " ", IMAGE_TOKEN).replace(" " + IMAGE_TOKEN, IMAGE_TOKEN)
    return VilaSample(text=text + eos, images=[data for _, data in chosen],
                      key=raw["__key__"], source=doc.get("source", ""),
                      skipped_images=skipped)


def build_pair(raw: dict[str, Any], eos: str = "", prefix: str = IMAGE_TOKEN,
               decode: Callable[[bytes], Any] = _identity,
               escape: str = IMAGE_ESCAPE) -> VilaSample:
    """``prefix + caption + eos`` and its one image (LazyCoyoDataset, one pair).

    Raises ValueError when the pair has no stored or no decodable image: the export
    leaves such a pair out, so VILA never sees it."""
    doc = document_of(raw)
    caption = escape_text(" ".join(doc.get("texts", [])), IMAGE_TOKEN, escape)
    stored = written_images(raw, doc)
    if not stored:
        raise ValueError(f"pair {raw.get('__key__')} has no stored image")
    image = decode(stored[0][1])
    return VilaSample(text=prefix + caption + eos, images=[image], key=raw["__key__"],
                      source=doc.get("source", ""), skipped_images=len(stored) - 1)

"""A written document the way the model sees it (VILA's MMC4 loader): kept images
sorted by assigned sentence, ``<image>`` before each assigned sentence, sentences joined
by a space. Shared by ``curate show`` and the HTML gallery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMAGE_TOKEN = "<image>"
VILA_MAX_IMAGES = 6  # VILA's LazyMMC4Dataset keeps the first 6 images (shared/README.md)


@dataclass
class Placed:
    sentence: int
    order: int  # position among the written images, in document order
    image: dict[str, Any]  # ImageRecord.to_dict() of a written image


def placed_images(record: dict[str, Any]) -> list[Placed]:
    """Written images (those with a shard member) at their assigned sentence, in the
    loader's order; an image without an assignment goes before the first sentence."""
    n = max(1, len(record.get("texts") or []))
    placed = []
    for im in record.get("images") or []:
        if not im.get("member"):
            continue
        j = im.get("matched_text_index")
        j = 0 if not isinstance(j, int) else min(max(j, 0), n - 1)
        placed.append(Placed(j, len(placed), im))
    return sorted(placed, key=lambda p: p.sentence)  # stable: document order within


def dropped_images(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [im for im in record.get("images") or [] if not im.get("member")]


def segments(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """[("image", Placed) | ("text", str)] in model order."""
    by_sentence: dict[int, list[Placed]] = {}
    for p in placed_images(record):
        by_sentence.setdefault(p.sentence, []).append(p)
    out: list[tuple[str, Any]] = []
    for i, text in enumerate(record.get("texts") or [""]):
        out.extend(("image", p) for p in by_sentence.get(i, []))
        out.append(("text", text))
    return out


def model_text(record: dict[str, Any]) -> str:
    return " ".join(IMAGE_TOKEN if kind == "image" else value
                    for kind, value in segments(record))


def image_caption(im: dict[str, Any]) -> str:
    sim = im.get("matched_sim")
    size = f"{im.get('width')}x{im.get('height')}" if im.get("width") else "size ?"
    parts = [im.get("member") or "", size]
    if sim is not None:
        parts.append(f"sim {sim:.3f}")
    if im.get("matched_text_index") is not None:
        parts.append(f"sentence {im['matched_text_index']}")
    if im.get("num_bytes"):
        parts.append(f"{im['num_bytes']} B")
    return ", ".join(p for p in parts if p)


def render_terminal(record: dict[str, Any], key: str, shard: str) -> str:
    """One document as text: header, model view with <image> markers, image table."""
    placed = placed_images(record)
    lines = [f"key {key}  shard {shard}  doc_id {record.get('doc_id')}  "
             f"source {record.get('source')}",
             f"url {record.get('url')}", "", model_text(record), "", "images (model order):"]
    for p in placed:
        extra = "  [beyond VILA's first 6]" if p.order >= VILA_MAX_IMAGES else ""
        lines.append(f"  {IMAGE_TOKEN} {image_caption(p.image)}  {p.image.get('url')}{extra}")
    drops = dropped_images(record)
    if drops:
        lines.append("dropped images:")
        lines += [f"  {im.get('status')} (by {im.get('dropped_by')})  {im.get('url')}"
                  for im in drops]
    return "\n".join(lines)

"""One curated shard sample -> one record of a VILA on-disk layout.

Layouts as VILA's unmodified loaders read them (NVlabs/VILA ``llava/data/dataset.py``):
``LazyMMC4Dataset`` documents (``text_list``, ``image_info[i]`` with ``image_base64``
and ``matched_text_index``, ``similarity_matrix`` with one row per image: VILA zips
``image_info`` with it, so a short matrix would silently lose images),
``LazyCoyoDataset`` pairs (``{id, url, text, clip_sim, image}``) and
``LazyCoyoWebDataset`` members (``KEY.jpg``, ``KEY.txt``, ``KEY.json``).
A sample that cannot be exported returns a reason code instead of a record.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

from trainer_bridge.images import decode

VILA_SHORT_SIDE = 336  # VILA-1 vision tower input (CLIP ViT-L/14-336)
# Input sizes of the towers VILA trains with: storing this short side keeps every
# preprocessing mode (pad, resize, crop) at full resolution.
TOWER_SIZES = {"clip-336": 336, "siglip-384": 384, "internvit-448": 448, "siglip-448": 448}


def reencode_jpeg(data: bytes, short_side: int | None) -> bytes:
    """RGB JPEG whose short side is at most ``short_side`` (never upscaled). Decodes
    with the trainer bridge's rule, so both leave out the same images."""
    rgb = decode(data)
    if short_side and min(rgb.size) > short_side:
        scale = short_side / min(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                         Image.BICUBIC)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _stored(raw: dict[str, Any], doc: dict[str, Any]) -> list[tuple[int, dict, bytes]]:
    return [(n, im, raw[im["member"]]) for n, im in enumerate(doc.get("images", []))
            if im.get("member") and raw.get(im["member"]) is not None]


def _sim_row(doc: dict, n: int, im: dict) -> list[float]:
    """The image's similarity to every sentence (stored row, else matched_sim only)."""
    texts = len(doc["texts"])
    row = im.get("similarities")
    matrix = doc.get("similarity_matrix") or []
    if not (row and len(row) == texts) and n < len(matrix) and len(matrix[n]) == texts:
        row = matrix[n]
    if row and len(row) == texts and all(v is not None for v in row):
        return [float(v) for v in row]
    row = [0.0] * texts
    row[im["matched_text_index"]] = float(im.get("matched_sim") or 0.0)
    return row


def mmc4_record(raw: dict, doc: dict, short_side: int | None) -> tuple[dict | None, dict]:
    """(MMC4 document or None, skipped-image reasons)."""
    skipped: dict[str, int] = {}
    infos, rows = [], []
    for n, im, data in _stored(raw, doc):
        j = im.get("matched_text_index")
        if not isinstance(j, int) or not 0 <= j < len(doc["texts"]):
            skipped["image_unmatched"] = skipped.get("image_unmatched", 0) + 1
            continue
        try:
            jpeg = reencode_jpeg(data, short_side)
        except Exception:  # any decoder error: the image is left out, counted
            skipped["image_undecodable"] = skipped.get("image_undecodable", 0) + 1
            continue
        infos.append({"raw_url": im.get("url"), "image_name": f"{raw['__key__']}.{im['member']}",
                      "matched_text_index": j, "matched_sim": im.get("matched_sim"),
                      "face_detections": None, "image_base64": _b64(jpeg)})
        rows.append(_sim_row(doc, n, im))
    if not infos:
        return None, skipped
    meta = doc.get("metadata") or {}
    record = {"url": doc.get("url"), "text_list": list(doc["texts"]), "image_info": infos,
              "similarity_matrix": rows,
              "could_have_url_duplicate": int(meta.get("could_have_url_duplicate", 0) or 0),
              "doc_id": doc.get("doc_id")}
    return record, skipped


def _pair(raw: dict, doc: dict, short_side: int | None) -> tuple[dict, bytes] | str:
    stored = _stored(raw, doc)
    if not stored:
        return "no_images"
    _, im, data = stored[0]
    try:
        jpeg = reencode_jpeg(data, short_side)
    except Exception:  # any decoder error
        return "image_undecodable"
    meta = doc.get("metadata") or {}
    sim = im.get("matched_sim")
    if sim is None:
        sim = meta.get("clip_similarity_vitl14", meta.get("clip_similarity_vitb32"))
    info = {"id": meta.get("id", doc.get("doc_id")), "url": im.get("url"),
            "text": " ".join(doc.get("texts", [])), "clip_sim": sim}
    return info, jpeg


def coyo_record(raw: dict, doc: dict, short_side: int | None) -> dict | str:
    made = _pair(raw, doc, short_side)
    if isinstance(made, str):
        return made
    info, jpeg = made
    return {**info, "image": _b64(jpeg)}


def wds_record(raw: dict, doc: dict, short_side: int | None) -> dict | str:
    """Members of one coyo-wds sample (bytes base64'd for the spill file)."""
    made = _pair(raw, doc, short_side)
    if isinstance(made, str):
        return made
    info, jpeg = made
    meta = json.dumps({**info, "doc_id": doc.get("doc_id"), "source": doc.get("source")})
    return {"__key__": raw["__key__"].replace(".", "_"), "jpg": _b64(jpeg),
            "txt": info["text"], "json": meta}

"""LLaVA-format SFT records (JSON list or JSONL) -> Documents.

A record ``{"id", "image": name | [names], "conversations": [{"from", "value"}, ...]}``
becomes a ``llava`` Document: ``texts`` are the turns' values in order, ``metadata``
keeps every other field (``id``, the original ``image``, ...) plus the turns' ``roles``,
so the record round-trips (``trainer_bridge.sft_shards.record_of``). Image ``k`` is
matched to the turn holding the ``k``-th ``<image>`` marker (turn 0 without markers).

Images: an ``http(s)://`` name stays ``pending`` for the download stage; any other
name is a path under ``image_root`` (default: the input file's folder), read and
checked here (status ``ok``, sizes, sha256). A path leaving the root
(``image_outside_root``), a missing file (``missing_image``) or one that is not an
image (``not_an_image``) quarantines the record with its line and reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
from collections.abc import Iterator
from typing import Any

import fsspec
from PIL import Image

from curation.document import IMAGE_OK, Document, ImageRecord, Provenance, make_doc_id
from curation.ingest.files import open_binary
from curation.ingest.mmc4 import BadRecord
from curation.ingest.quarantine import QuarantineRecord, excerpt_of

IMAGE_TOKEN = "<image>"
MAX_IMAGES = 64


def _records(path: str, storage_options: dict | None,
             max_line_bytes: int) -> Iterator[tuple[dict, Any, str]]:
    """(location, decoded record or a BadRecord, excerpt) for a JSON list (location
    ``row``: 0-based index) or JSONL (``line``: 1-based)."""
    with open_binary(path, storage_options) as f:
        data = f.read()
    text = data.decode("utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            yield {}, BadRecord("malformed_json", str(exc)), text[:200]
            return
        if not isinstance(items, list):
            yield {}, BadRecord("wrong_type", "a JSON file must hold a list"), text[:200]
            return
        for n, item in enumerate(items):
            yield {"row": n}, item, json.dumps(item)[:200]
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(line.encode()) > max_line_bytes:
            yield {"line": n}, BadRecord("line_too_long", f"line over {max_line_bytes} "
                                         "bytes"), line[:200]
            continue
        try:
            yield {"line": n}, json.loads(line), line[:200]
        except ValueError as exc:
            yield {"line": n}, BadRecord("malformed_json", str(exc)), line[:200]


def _turns(rec: Any) -> tuple[list[str], list[str]]:
    if not isinstance(rec, dict):
        raise BadRecord("wrong_type", "a record must be an object")
    conv = rec.get("conversations")
    if conv is None:
        raise BadRecord("missing_field:conversations", "no conversations")
    if not isinstance(conv, list) or not conv or not all(
            isinstance(t, dict) and isinstance(t.get("from"), str)
            and isinstance(t.get("value"), str) for t in conv):
        raise BadRecord("wrong_type", "conversations must be a non-empty list of "
                        "{from, value} strings")
    return [t["from"] for t in conv], [t["value"] for t in conv]


def _names(rec: dict) -> list[str]:
    image = rec.get("image")
    names = [] if image is None else image if isinstance(image, list) else [image]
    if not all(isinstance(n, str) and n for n in names):
        raise BadRecord("wrong_type", "image must be a name or a list of names")
    if len(names) > MAX_IMAGES:
        raise BadRecord("too_many_images", f"{len(names)} images (limit {MAX_IMAGES})")
    return names


def _local_path(root: str, name: str) -> str:
    if name.startswith("/") or "://" in name or ".." in posixpath.normpath(name).split("/"):
        raise BadRecord("image_outside_root", f"image {name!r} leaves {root}")
    full = posixpath.join(root, name)
    if "://" not in root:  # a symlink may not lead out of the root either
        real_root = os.path.realpath(root)
        if os.path.commonpath([real_root, os.path.realpath(full)]) != real_root:
            raise BadRecord("image_outside_root", f"image {name!r} leaves {root}")
    return full


def _load_local(root: str, name: str, storage_options: dict | None) -> ImageRecord:
    full = _local_path(root, name)
    try:
        with fsspec.open(full, "rb", **(storage_options or {})) as f:
            data = f.read()
    except FileNotFoundError:
        raise BadRecord("missing_image", f"image {name!r} not found under {root}") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            width, height, fmt = im.width, im.height, (im.format or "").lower()
    except Exception as exc:  # any decoder error: not an image
        raise BadRecord("not_an_image", f"image {name!r}: {exc}") from None
    rec = ImageRecord(url=name, status=IMAGE_OK, width=width, height=height,
                      original_width=width, original_height=height,
                      mime=f"image/{fmt or 'jpeg'}", num_bytes=len(data),
                      sha256=hashlib.sha256(data).hexdigest())
    rec.data = data
    return rec


def _matched_turns(values: list[str], n_images: int) -> list[int]:
    turns = [i for i, v in enumerate(values) for _ in range(v.count(IMAGE_TOKEN))]
    return [turns[k] if k < len(turns) else 0 for k in range(n_images)]


def parse_llava_record(rec: Any, root: str, provenance: Provenance,
                       storage_options: dict | None = None) -> Document:
    """Validate one record and resolve its images; raises BadRecord with a reason."""
    roles, values = _turns(rec)
    names = _names(rec)
    images = []
    for name, turn in zip(names, _matched_turns(values, len(names))):
        if name.startswith(("http://", "https://")):
            im = ImageRecord(url=name)
        else:
            im = _load_local(root, name, storage_options)
        im.matched_text_index = turn
        images.append(im)
    meta = {k: v for k, v in rec.items() if k != "conversations"}
    meta["roles"] = roles
    ident = rec.get("id")
    return Document(
        doc_id=make_doc_id("llava", str(ident) if ident is not None else provenance.location(),
                           "|".join(names)),
        source="llava", url=None, texts=values, images=images,
        provenance=provenance, metadata=meta)


def read_llava(path: str, image_root: str | None = None,
               storage_options: dict | None = None,
               max_line_bytes: int = 8 * 1024 * 1024) -> Iterator[Document | QuarantineRecord]:
    root = (image_root or posixpath.dirname(path)).rstrip("/") or "/"
    for loc, rec, excerpt in _records(path, storage_options, max_line_bytes):
        try:
            if isinstance(rec, BadRecord):
                raise rec
            yield parse_llava_record(rec, root, Provenance(file=path, **loc), storage_options)
        except BadRecord as exc:
            yield QuarantineRecord(path, exc.reason, str(exc), excerpt=excerpt_of(excerpt),
                                   **loc)

"""SFT: LLaVA-style conversations -> ``input_ids`` / ``labels`` as VILA builds them.

Records look like ``{"id", "image" (a name, a list of names, or absent),
"conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}]}``.

Per record (NVlabs/VILA ``llava/data/dataset.py``, ``llava/utils/tokenizer.py``):

1. With images, ``<image>`` markers are normalised as ``preprocess_multimodal`` does
   (``vila1``: VILA-1.5's rule; ``nvila``: the current one, every marker followed by a
   newline); a record without markers gets ``<image>\\n`` in front of the first turn,
   once per image (VILA adds one; with a list of several images and no marker VILA-1.5
   stops on a count mismatch, here each image gets its marker). Without images a
   literal ``<image>`` stays text in ``vila1`` (one plain tokenizer call) and becomes
   ``<IMAGE>`` in ``nvila`` (where it would be the media token).
2. A leading non-human turn is skipped, roles must alternate; ``nvila`` strips values.
3. The template builds one prompt and the whole prompt is tokenized at once
   (``tokenize``: VILA-1.5's ``tokenizer_image_token`` or one tokenizer call).
4. Labels: VILA's current rule (``preprocess_conversation``): the prompt is tokenized
   again with every assistant message replaced by a sentinel token; the sentinel and the
   token after it (the turn's end: ``</s>``, ``<|eot_id|>``, ``<|im_end|>``) are removed,
   and every token of the real prompt that this template does not match is trained:
   the assistant messages and their end tokens. VILA-1.5 computed the same spans from
   token counts per round, which silently masks a whole sample when its count
   assumptions do not hold for the tokenizer; a sample whose template does not match
   is fully masked here too, but counted (``SftEncoder.unmatched``).
"""

from __future__ import annotations

import copy
import json
import logging
import posixpath
from dataclasses import dataclass
from typing import Any, Protocol

import fsspec

from trainer_bridge.formats import (
    IMAGE_TOKEN,
    FormatName,
    VilaFormat,
    get_format,
    image_token_id_for,
    tokenize,
)
from trainer_bridge.samples import IMAGE_ESCAPE
from trainer_bridge.templates import ChatTemplate, get_template
from trainer_bridge.token_ids import IGNORE_INDEX

log = logging.getLogger("trainer_bridge")
SENTINEL = "<vila/sentinel>"
HUMAN, ASSISTANT = ("human", "user"), ("gpt", "assistant")


def load_conversations(path: str, storage_options: dict | None = None) -> list[dict]:
    """Records of a JSON list or a JSONL file; a bad line is named by file and line."""
    with fsspec.open(path, "rt", encoding="utf-8", **(storage_options or {})) as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: not JSON: {exc}") from None
    return records


class ImageStore(Protocol):
    def get(self, name: str) -> bytes: ...


@dataclass
class ImageFolder:
    """Images under a folder (local or fsspec); names may not climb out of it."""

    root: str
    storage_options: dict | None = None

    def get(self, name: str) -> bytes:
        if name.startswith("/") or ".." in posixpath.normpath(name).split("/"):
            raise ValueError(f"image name {name!r} leaves {self.root}; refused")
        with fsspec.open(posixpath.join(self.root, name), "rb",
                         **(self.storage_options or {})) as f:
            return f.read()


def image_names(record: dict) -> list[str]:
    image = record.get("image")
    if image is None:
        return []
    return list(image) if isinstance(image, list) else [image]


def _normalise_markers(value: str, fmt: VilaFormat) -> str:
    """``preprocess_multimodal`` for one turn holding ``<image>``."""
    chunks = [c.strip() for c in value.split(IMAGE_TOKEN)]
    chunks = [c if c.endswith("\n") else c + " " for c in chunks[:-1]] + [chunks[-1]]
    value = (IMAGE_TOKEN + "\n").join(chunks).strip()
    if fmt.name == "nvila":
        value = value.replace(IMAGE_TOKEN, IMAGE_TOKEN + "\n")
        value = value.replace(IMAGE_TOKEN + "\n\n", IMAGE_TOKEN + "\n")
    return value


def prepare_turns(record: dict, fmt: VilaFormat) -> list[str]:
    """The record's message values, normalised, starting with the user (see module)."""
    turns = [dict(t) for t in record.get("conversations", [])]
    n_images = len(image_names(record))
    if n_images:
        if turns and not any(IMAGE_TOKEN in t["value"] for t in turns):
            turns[0]["value"] = (IMAGE_TOKEN + "\n") * n_images + turns[0]["value"]
        for t in turns:
            if IMAGE_TOKEN in t["value"]:
                t["value"] = _normalise_markers(t["value"], fmt)
    elif fmt.name == "nvila":
        for t in turns:
            t["value"] = t["value"].replace(IMAGE_TOKEN, IMAGE_ESCAPE)
    if turns and turns[0].get("from") not in HUMAN:
        turns = turns[1:]
    values = []
    for i, t in enumerate(turns):
        role = t.get("from")
        if role not in (HUMAN, ASSISTANT)[i % 2]:
            raise ValueError(f"record {record.get('id')!r}: turn {i} is from {role!r}, "
                             f"expected {'assistant' if i % 2 else 'human'}")
        values.append(t["value"].strip() if fmt.strip_turns else t["value"])
    have = sum(v.count(IMAGE_TOKEN) for v in values) if n_images else 0
    if have != n_images:
        raise ValueError(f"record {record.get('id')!r}: {have} <image> marker(s) for "
                         f"{n_images} image(s)")
    return values


def match_labels(ids: list[int], template: list[int], sentinel_id: int,
                 drop_before: bool) -> list[int] | None:
    """VILA's sentinel matching; None when the template does not match fully."""
    keep = [True] * len(template)
    for k in range(len(template) - 1):
        if template[k] == sentinel_id:
            keep[k] = keep[k + 1] = False
            if drop_before and k > 0:
                keep[k - 1] = False
    pattern = [t for t, ok in zip(template, keep) if ok]
    labels, p = [IGNORE_INDEX] * len(ids), 0
    for k, token in enumerate(ids):
        if p < len(pattern) and token == pattern[p]:
            p += 1
        else:
            labels[k] = token
    return labels if p == len(pattern) else None


class SftEncoder:
    """Turns one record into ``(input_ids, labels, image names)`` (picklable)."""

    def __init__(self, tokenizer: Any, template: str | ChatTemplate = "v1",
                 format: FormatName | VilaFormat = "vila1",
                 image_token_id: int | None = None) -> None:
        self.tokenizer, self.template = tokenizer, get_template(template)
        self.format = get_format(format)
        self.image_token_id = image_token_id_for(self.format, tokenizer, image_token_id)
        self._with_sentinel = None
        self.unmatched = 0

    def _sentinel_tokenizer(self) -> tuple[Any, int]:
        if self._with_sentinel is None:
            tok = copy.deepcopy(self.tokenizer)  # never change the caller's vocabulary
            tok.add_tokens([SENTINEL], special_tokens=True)
            self._with_sentinel = tok
        tok = self._with_sentinel
        return tok, tok.convert_tokens_to_ids(SENTINEL)

    def encode(self, record: dict) -> tuple[list[int], list[int], list[str]]:
        names = image_names(record)
        values = prepare_turns(record, self.format)
        fmt, img = self.format, self.image_token_id
        ids = tokenize(self.template.prompt(values), self.tokenizer, fmt, img, bool(names))
        tok, sentinel_id = self._sentinel_tokenizer()
        masked = [SENTINEL if i % 2 else v for i, v in enumerate(values)]
        pattern = tokenize(self.template.prompt(masked), tok, fmt, img, bool(names))
        labels = (match_labels(ids, pattern, sentinel_id, drop_before=False)
                  or match_labels(ids, pattern, sentinel_id, drop_before=True))
        if labels is None:
            self.unmatched += 1
            log.warning("sft record %s: template did not match; all labels masked",
                        record.get("id"))
            labels = [IGNORE_INDEX] * len(ids)
        labels = [IGNORE_INDEX if t == img else t for t in labels]
        return ids, labels, names

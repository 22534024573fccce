"""The two VILA code lines a sample can be built for, and how each turns text into ids.

Read from NVlabs/VILA (``llava/data/dataset.py``, ``llava/mm_utils.py``):

- ``vila1`` (VILA-1 / VILA-1.5, e.g. commit fcd119c): ``<image>`` goes right before
  the matched sentence or caption. ``tokenizer_image_token`` splits the text at each
  ``<image>``, tokenizes every piece with the tokenizer's own special tokens, keeps
  the first piece's BOS (if the tokenizer adds one) and drops the first token of every
  later piece, and puts -200 between pieces. BOS is there only if the tokenizer adds it.
- ``nvila`` (the current NVILA code): ``<image>\\n`` goes before the sentence or
  caption; ``<image>`` is a real token of the tokenizer (NVILA adds it with
  ``add_tokens(["<image>"], special_tokens=True)``) and the whole text is tokenized
  at once. An interleaved document gets a BOS prepended when the tokenizer has one and
  did not add it (``LazyMMC4Dataset``); pairs keep what the tokenizer gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

IMAGE_TOKEN = "<image>"
VILA1_IMAGE_TOKEN_ID = -200
FormatName = Literal["vila1", "nvila"]


@dataclass(frozen=True)
class VilaFormat:
    name: str
    image_prefix: str  # what goes before an image's sentence or caption
    split_images: bool  # vila1: tokenize between <image> markers, -200 between
    bos_for_documents: bool  # nvila: interleaved documents always start with BOS
    strip_turns: bool  # nvila: SFT message values are stripped before templating


FORMATS = {
    "vila1": VilaFormat("vila1", IMAGE_TOKEN, True, False, False),
    "nvila": VilaFormat("nvila", IMAGE_TOKEN + "\n", False, True, True),
}


def get_format(name: str | VilaFormat) -> VilaFormat:
    if isinstance(name, VilaFormat):
        return name
    if name not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, not {name!r}")
    return FORMATS[name]


def image_token_id_for(fmt: VilaFormat, tokenizer: Any | None,
                       override: int | None = None) -> int:
    """-200 for vila1; for nvila the tokenizer's own ``<image>`` id (must exist)."""
    if override is not None:
        return override
    if fmt.split_images or tokenizer is None:
        return VILA1_IMAGE_TOKEN_ID
    ids = getattr(tokenizer, "media_token_ids", None)
    if isinstance(ids, dict) and "image" in ids:
        return int(ids["image"])
    token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if token_id is None or token_id == getattr(tokenizer, "unk_token_id", None):
        raise ValueError("format 'nvila' needs '<image>' as a token of the tokenizer, as "
                         "NVILA adds it: tokenizer.add_tokens(['<image>'], "
                         "special_tokens=True) (and resize the model's embeddings)")
    return int(token_id)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


def tokenize(text: str, tokenizer: Any, fmt: VilaFormat, image_token_id: int,
             has_images: bool = True) -> list[int]:
    """Ids of ``text`` as the format's VILA code computes them.

    ``has_images=False`` is VILA-1.5's text-only SFT path: one plain tokenizer call,
    ``<image>`` not treated specially."""
    if not fmt.split_images or not has_images:
        return _ids(tokenizer, text)
    chunks = [_ids(tokenizer, chunk) for chunk in text.split(IMAGE_TOKEN)]
    bos = getattr(tokenizer, "bos_token_id", None)
    offset = 1 if chunks and chunks[0] and bos is not None and chunks[0][0] == bos else 0
    out: list[int] = [chunks[0][0]] if offset else []
    for n, chunk in enumerate(chunks):
        if n > 0:
            out.append(image_token_id)
        out.extend(chunk[offset:])
    return out


def with_document_bos(ids: list[int], tokenizer: Any, fmt: VilaFormat) -> list[int]:
    """nvila's ``LazyMMC4Dataset``: prepend BOS unless the ids already start with it."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if fmt.bos_for_documents and bos is not None and (not ids or ids[0] != bos):
        return [bos, *ids]
    return ids

"""SFT: LLaVA-style conversations and weighted mixtures (text-only data included).

Records look like ``{"id", "image" (a name, a list of names, or absent),
"conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}]}``
(JSON list or JSONL). Labels train only the assistant turns; system and human turns,
image tokens and padding are -100. The default template is Vicuna v1 (VILA-1's
``vicuna_v1``): ``SYSTEM USER: q ASSISTANT: a</s>USER: ...``. VILA's finding that
re-blending text-only instruction data during SFT keeps text ability is served by a
mixture whose sources may have no images; every sample says which source it is from.
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Protocol

import fsspec

from trainer_bridge.samples import IMAGE_ESCAPE, IMAGE_TOKEN
from trainer_bridge.tar_reader import read_samples

log = logging.getLogger("trainer_bridge")
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's "
                 "questions.")
HUMAN, ASSISTANT = {"human", "user"}, {"gpt", "assistant"}


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


@dataclass
class ShardImages:
    """Images held in shards, named ``KEY.MEMBER`` (e.g. ``00000-00000-000003.0.jpg``).
    Loads every image of the given shards into memory: meant for SFT-sized sets."""

    urls: list[str]
    storage_options: dict | None = None
    _data: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for url in self.urls:
            for sample in read_samples(url, storage_options=self.storage_options):
                for suffix, value in sample.items():
                    if not suffix.startswith("__") and suffix != "json":
                        self._data[f"{sample['__key__']}.{suffix}"] = value

    def get(self, name: str) -> bytes:
        if name not in self._data:
            raise KeyError(f"image {name!r} is in none of {len(self.urls)} shard(s)")
        return self._data[name]


@dataclass(frozen=True)
class ChatTemplate:
    system: str = VICUNA_SYSTEM
    user: str = "USER"
    assistant: str = "ASSISTANT"
    sep: str = " "


def image_names(record: dict) -> list[str]:
    image = record.get("image")
    if image is None:
        return []
    return list(image) if isinstance(image, list) else [image]


def conversation_segments(record: dict, template: ChatTemplate, eos: str) -> list[tuple[str, bool]]:
    """``(text, trained)`` pieces of one record; image tokens placed as LLaVA does."""
    turns = [dict(t) for t in record.get("conversations", [])]
    n_images = len(image_names(record))
    for t in turns:
        if n_images == 0:
            t["value"] = t["value"].replace(IMAGE_TOKEN, IMAGE_ESCAPE)
    have = sum(t["value"].count(IMAGE_TOKEN) for t in turns)
    if n_images and have == 0 and turns:
        turns[0]["value"] = (IMAGE_TOKEN + "\n") * n_images + turns[0]["value"]
    elif have != n_images:
        raise ValueError(f"record {record.get('id')!r}: {have} <image> tokens "
                         f"for {n_images} image(s)")
    segments = [(template.system + template.sep, False)]
    for t in turns:
        role = t.get("from")
        if role in HUMAN:
            segments.append((f"{template.user}: {t['value']}{template.sep}"
                             f"{template.assistant}:", False))
        elif role in ASSISTANT:
            segments.append((f" {t['value']}{eos}", True))
        else:
            raise ValueError(f"record {record.get('id')!r}: unknown speaker {role!r}")
    return segments


@dataclass
class SftSource:
    """One mixture member: its records, sampling weight and where its images live."""

    name: str
    records: list[dict]
    weight: float = 1.0
    images: ImageStore | None = None

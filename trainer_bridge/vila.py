"""VILA pre-training transforms: raw shard sample(s) -> model-ready dict.

``VilaPretrain("interleaved")`` replaces ``LazyMMC4Dataset.__getitem__``: one
sequence per document. ``VilaPretrain("pairs")`` with ``ShardDataset(group_size=4)``
replaces ``LazyCoyoDataset``: one index holds 4 pairs, each its own sequence with its
own BOS/EOS, returned as ``rows`` that ``Collator`` turns into separate batch rows.

Per sequence: ``text``, ``images`` (``[n, C, H, W]``) and, with a tokenizer,
``input_ids`` / ``labels``. The image-token count always equals ``len(images)``.
Truncation to the model's length is the collator's job, as in VILA (it keeps a
trailing image token with its image). Labels are the ids with image tokens at -100
(VILA leaves -200 there and its model drops those positions: the same loss) and, for
pairs, the pad id at -100 as ``LazyCoyoDataset`` does.
"""

from __future__ import annotations

from typing import Any, Literal

from trainer_bridge.formats import (
    FormatName,
    VilaFormat,
    get_format,
    image_token_id_for,
    tokenize,
    with_document_bos,
)
from trainer_bridge.images import Mode, as_tensor_fn, decode, to_tensors
from trainer_bridge.samples import (
    IMAGE_ESCAPE,
    VILA_MAX_IMAGES,
    VilaSample,
    build_interleaved,
    build_pair,
    document_of,
)
from trainer_bridge.token_ids import IGNORE_INDEX

PAIR_SOURCES = ("coyo", "laion")


class VilaPretrain:
    """Callable transform for ``ShardDataset`` (picklable for DataLoader workers).

    ``sources`` limits which documents are accepted (default: pairs take ``coyo`` and
    ``laion`` only, interleaved takes anything but ``llava`` SFT records); another one
    raises, so ``ShardDataset`` replaces it by a neighbour and counts it."""

    def __init__(self, kind: Literal["interleaved", "pairs"] = "interleaved",
                 tokenizer: Any | None = None, processor: Any | None = None,
                 format: FormatName | VilaFormat = "vila1", image_mode: Mode = "resize",
                 tower: str | None = None, max_num_images: int = VILA_MAX_IMAGES,
                 image_token_id: int | None = None, escape: str = IMAGE_ESCAPE,
                 eos: str | None = None, sources: tuple[str, ...] | None = None) -> None:
        if kind not in ("interleaved", "pairs"):
            raise ValueError(f"kind must be 'interleaved' or 'pairs', not {kind!r}")
        self.kind, self.tokenizer, self.max_num_images = kind, tokenizer, max_num_images
        self.format, self.escape = get_format(format), escape
        self.image_token_id = image_token_id_for(self.format, tokenizer, image_token_id)
        self.image_fn = as_tensor_fn(processor, image_mode, tower)
        default_eos = getattr(tokenizer, "eos_token", None) or ""
        self.eos = default_eos if eos is None else eos
        self.sources = sources if sources is not None else (
            PAIR_SOURCES if kind == "pairs" else None)

    def _check_source(self, raw: dict) -> None:
        source = document_of(raw).get("source", "")
        allowed = self.sources
        if (allowed is not None and source not in allowed) or (
                allowed is None and source == "llava"):
            raise ValueError(f"{raw.get('__key__')}: source {source!r} is not one this "
                             f"{self.kind} transform takes ({allowed or 'not llava'})")

    def build(self, raw: dict) -> VilaSample:
        """The sample's text and decoded images (one pair or one document)."""
        self._check_source(raw)
        prefix = self.format.image_prefix
        if self.kind == "pairs":
            return build_pair(raw, self.eos, prefix, decode, self.escape)
        return build_interleaved(raw, self.eos, prefix, self.max_num_images, decode,
                                 self.escape)

    def __call__(self, item: dict | list[dict]) -> dict[str, Any]:
        if self.kind == "interleaved":
            return self._sequence(self.build(item))
        raws = item if isinstance(item, list) else [item]
        rows, errors = [], []
        for raw in raws:
            try:
                rows.append(self._sequence(self.build(raw)))
            except Exception as exc:  # the export leaves such a pair out: so do we
                errors.append(f"{raw.get('__key__')}: {exc}")
        if not rows:
            raise ValueError("no usable pair in the group: " + "; ".join(errors))
        return {"rows": rows, "__key__": [r["__key__"] for r in rows],
                "source": rows[0]["source"], "skipped_pairs": len(errors)}

    def _sequence(self, sample: VilaSample) -> dict[str, Any]:
        images = sample.images
        out: dict[str, Any] = {"text": sample.text, "source": sample.source,
                               "__key__": sample.key}
        if self.tokenizer is not None:
            ids = tokenize(sample.text, self.tokenizer, self.format, self.image_token_id)
            img = self.image_token_id
            if self.kind == "interleaved":
                while ids and ids[-1] == img:  # LazyMMC4Dataset drops a trailing image
                    ids = ids[:-1]
                ids = with_document_bos(ids, self.tokenizer, self.format)
            images = images[:sum(1 for t in ids if t == img)]
            pad = getattr(self.tokenizer, "pad_token_id", None) if self.kind == "pairs" else None
            out["input_ids"] = ids
            out["labels"] = [IGNORE_INDEX if t == img or (pad is not None and t == pad) else t
                             for t in ids]
        out["images"] = to_tensors(images, self.image_fn)
        return out

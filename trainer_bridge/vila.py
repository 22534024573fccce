"""VILA pre-training transforms: raw shard sample(s) -> model-ready dict.

``VilaPretrain(kind="interleaved")`` replaces VILA's ``LazyMMC4Dataset.__getitem__``;
``VilaPretrain(kind="pairs")`` with ``ShardDataset(group_size=4)`` replaces
``LazyCoyoDataset``. Output keys: ``text``, ``images`` (``[n, C, H, W]``),
``source``, ``__key__``, and with a tokenizer ``input_ids`` and ``labels``. The
number of image tokens in ``input_ids`` (or of ``<image>`` in ``text``) always equals
``len(images)``: an image that fails to decode is dropped together with its token,
and truncation drops the images whose tokens were cut.
"""

from __future__ import annotations

from typing import Any, Literal

from PIL import Image

from trainer_bridge.images import as_tensor_fn, decode, to_tensors
from trainer_bridge.samples import (
    IMAGE_ESCAPE,
    VILA_MAX_IMAGES,
    VilaSample,
    build_interleaved,
    build_pairs,
    drop_image,
)
from trainer_bridge.token_ids import (
    IGNORE_INDEX,
    VILA1_IMAGE_TOKEN_ID,
    TokenSpec,
    count_images,
    encode_with_images,
    truncate,
)


class VilaPretrain:
    """Callable transform for ``ShardDataset`` (picklable for DataLoader workers)."""

    def __init__(self, kind: Literal["interleaved", "pairs"] = "interleaved",
                 tokenizer: Any | None = None, processor: Any | None = None,
                 max_num_images: int = VILA_MAX_IMAGES, max_length: int | None = None,
                 image_token_id: int = VILA1_IMAGE_TOKEN_ID, escape: str = IMAGE_ESCAPE,
                 eos: str | None = None) -> None:
        if kind not in ("interleaved", "pairs"):
            raise ValueError(f"kind must be 'interleaved' or 'pairs', not {kind!r}")
        self.kind, self.tokenizer, self.max_num_images = kind, tokenizer, max_num_images
        self.escape = escape
        self.spec = TokenSpec(image_token_id=image_token_id, max_length=max_length)
        self.image_fn = as_tensor_fn(processor)
        default_eos = getattr(tokenizer, "eos_token", None) or ""
        self.eos = default_eos if eos is None else eos

    def build(self, item: dict | list[dict]) -> VilaSample:
        if self.kind == "pairs":
            raws = item if isinstance(item, list) else [item]
            return build_pairs(raws, eos=self.eos, escape=self.escape)
        return build_interleaved(item, eos=self.eos, max_num_images=self.max_num_images,
                                 escape=self.escape)

    def __call__(self, item: dict | list[dict]) -> dict[str, Any]:
        sample, images = self._decoded(self.build(item))
        out: dict[str, Any] = {"text": sample.text, "source": sample.source,
                               "__key__": sample.key}
        if self.tokenizer is not None:
            ids = encode_with_images(sample.text, self.tokenizer, self.spec)
            labels = [IGNORE_INDEX if t == self.spec.image_token_id else t for t in ids]
            ids, labels = truncate(ids, labels, self.spec)
            images = images[:count_images(ids, self.spec)]
            out.update(input_ids=ids, labels=labels)
        out["images"] = to_tensors(images, self.image_fn)
        return out

    @staticmethod
    def _decoded(sample: VilaSample) -> tuple[VilaSample, list[Image.Image]]:
        """Decode every image; one that fails is dropped together with its token."""
        decoded: list[Image.Image] = []
        while len(decoded) < len(sample.images):
            try:
                decoded.append(decode(sample.images[len(decoded)]))
            except Exception:  # any decoder error means: not an image
                sample = drop_image(sample, len(decoded))
        return sample, decoded

"""A weighted, seeded SFT mixture as a map-style dataset.

Per epoch, ``num_samples`` slots are split between sources in proportion to their
weights (largest remainder, so the proportions are exact, not random), each source
fills its slots from a seeded permutation of its records (cycling when up-weighted),
and all slots are shuffled together. Use torch's ``DistributedSampler`` to split it
across ranks (equal counts, padded or dropped) and ``set_epoch`` on both.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from torch.utils.data import Dataset

from trainer_bridge.images import as_tensor_fn, decode, to_tensors
from trainer_bridge.sft import ChatTemplate, SftSource, conversation_segments, image_names
from trainer_bridge.token_ids import (
    VILA1_IMAGE_TOKEN_ID,
    TokenSpec,
    count_images,
    encode_segments,
    truncate,
)

log = logging.getLogger("trainer_bridge")
MAX_FALLBACKS = 16


def allocate(weights: list[float], total: int) -> list[int]:
    """Integer slot counts proportional to ``weights`` that sum to ``total``."""
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"mixture weights must be >= 0 with a positive sum: {weights}")
    exact = [w * total / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_rest = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_rest[:total - sum(counts)]:
        counts[i] += 1
    return counts


class SftMixture(Dataset):
    """Tokenized SFT samples from several sources, each tagged with ``source``."""

    def __init__(self, sources: list[SftSource], tokenizer: Any, processor: Any = None,
                 template: ChatTemplate | None = None, num_samples: int | None = None,
                 seed: int = 0, max_length: int | None = None,
                 image_token_id: int = VILA1_IMAGE_TOKEN_ID) -> None:
        empty = [s.name for s in sources if not s.records]
        if empty:
            raise ValueError(f"mixture sources without records: {empty}")
        self.sources, self.tokenizer, self.seed = sources, tokenizer, seed
        self.template = template or ChatTemplate()
        self.num_samples = num_samples or sum(len(s.records) for s in sources)
        self.spec = TokenSpec(image_token_id=image_token_id, max_length=max_length)
        self.image_fn = as_tensor_fn(processor)
        self.eos = getattr(tokenizer, "eos_token", None) or ""
        self.failures = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = random.Random(f"mixture-{self.seed}-{epoch}")
        counts = allocate([s.weight for s in self.sources], self.num_samples)
        plan: list[tuple[int, int]] = []
        for si, (source, n) in enumerate(zip(self.sources, counts)):
            perm = list(range(len(source.records)))
            rng.shuffle(perm)
            plan.extend((si, perm[k % len(perm)]) for k in range(n))
        rng.shuffle(plan)
        self.epoch, self.plan = epoch, plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample at ``index``; a broken record is replaced by the next one."""
        for step in range(MAX_FALLBACKS):
            si, ri = self.plan[(index + step) % len(self.plan)]
            try:
                return self.encode(self.sources[si], ri)
            except Exception as exc:  # bad record: log it with its source and id
                self.failures += 1
                rec = self.sources[si].records[ri]
                log.warning("sft %s record %s: %s", self.sources[si].name, rec.get("id"), exc)
        raise RuntimeError(f"{MAX_FALLBACKS} consecutive SFT records failed at {index}")

    def encode(self, source: SftSource, index: int) -> dict[str, Any]:
        record = source.records[index]
        segments = conversation_segments(record, self.template, self.eos)
        ids, labels = truncate(*encode_segments(segments, self.tokenizer, self.spec),
                               self.spec)
        names = image_names(record)[:count_images(ids, self.spec)]
        if names and source.images is None:
            raise ValueError(f"source {source.name!r} has no image store for {names[0]!r}")
        images = [decode(source.images.get(n)) for n in names]
        return {"input_ids": ids, "labels": labels, "images": to_tensors(images, self.image_fn),
                "source": source.name, "id": record.get("id")}

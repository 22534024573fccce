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
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from trainer_bridge.formats import FormatName
from trainer_bridge.images import Mode, as_tensor_fn, decode, to_tensors
from trainer_bridge.sft import ImageStore, SftEncoder
from trainer_bridge.templates import ChatTemplate

log = logging.getLogger("trainer_bridge")
MAX_FALLBACKS = 16


@dataclass
class SftSource:
    """One mixture member: its records, sampling weight and where its images live
    (``ImageFolder``, ``ShardConversations``, or None for text-only data)."""

    name: str
    records: list[dict]
    weight: float = 1.0
    images: ImageStore | None = None

    @classmethod
    def from_shards(cls, name: str, spec: str | list[str], weight: float = 1.0,
                    storage_options: dict | None = None) -> SftSource:
        """LLaVA records curated into shards (``ingest: {format: llava}``)."""
        from trainer_bridge.sft_shards import ShardConversations

        store = ShardConversations(spec, storage_options)
        if store.skipped:
            log.info("sft source %s: skipped %s", name, dict(store.skipped))
        return cls(name, store.records, weight, store)


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
                 template: str | ChatTemplate = "v1", format: FormatName = "vila1",
                 image_mode: Mode = "resize", tower: str | None = None,
                 num_samples: int | None = None, seed: int = 0,
                 image_token_id: int | None = None) -> None:
        empty = [s.name for s in sources if not s.records]
        if empty:
            raise ValueError(f"mixture sources without records: {empty}")
        self.sources, self.tokenizer, self.seed = sources, tokenizer, seed
        self.encoder = SftEncoder(tokenizer, template, format, image_token_id)
        self.image_token_id = self.encoder.image_token_id
        self.num_samples = num_samples or sum(len(s.records) for s in sources)
        self.image_fn = as_tensor_fn(processor, image_mode, tower)
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
        """One record, untruncated (``Collator(model_max_length=...)`` cuts, as VILA)."""
        record = source.records[index]
        ids, labels, names = self.encoder.encode(record)
        if names and source.images is None:
            raise ValueError(f"source {source.name!r} has no image store for {names[0]!r}")
        images = [decode(source.images.get(n)) for n in names]
        return {"input_ids": ids, "labels": labels, "images": to_tensors(images, self.image_fn),
                "source": source.name, "id": record.get("id")}

"""Keep the best documents of the whole corpus by CLIP score: a top fraction, a top
count, or a fixed threshold. A global stage: the cut is computed over every unit's
scores at once, never per shard.

Sources: DataComp (Gadre et al. 2023) keeps the top 30% of the pool by ViT-L/14
score (``fraction: 0.3``), or ViT-B/32 >= 0.25 (``threshold: 0.25``; LAION-2B used
0.28). VILA (Lin et al. 2024) sorts COYO by image-caption CLIP similarity and keeps
the top 25M (``count: 25000000``).

The score of a document is the mean ``matched_sim`` of its kept images (for a pair:
its image-caption similarity), or a numeric metadata field such as COYO's own
``clip_similarity_vitl14``. Top-k is exact: ties at the cut are broken by
``doc_id``, so exactly k documents pass. Documents without a score are dropped as
``not_scored``.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from pydantic import Field, model_validator

from curation.document import Document
from curation.stage import GlobalStage, StageConfig

BELOW_CUT = "low_clip_score"
NOT_SCORED = "not_scored"


class ClipTopKConfig(StageConfig):
    fraction: float | None = Field(None, gt=0.0, le=1.0)
    count: int | None = Field(None, ge=0)
    threshold: float | None = Field(None, ge=-1.0, le=1.0)
    score: str = "matched_sim"  # or a numeric metadata field

    @model_validator(mode="after")
    def _one_rule(self) -> ClipTopKConfig:
        given = [v for v in (self.fraction, self.count, self.threshold) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fraction, count, threshold")
        return self


def doc_score(doc: Document, field: str) -> float | None:
    if field != "matched_sim":
        value = doc.metadata.get(field)
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        return float(value) if ok else None
    sims = [im.matched_sim for im in doc.kept_images if im.matched_sim is not None]
    return float(np.mean(sims)) if sims else None


def top_k_cut(scores: np.ndarray, ids: list[str], k: int) -> dict:
    """The k-th best (score, doc_id) in (score desc, doc_id asc) order, in O(n)."""
    n = len(scores)
    if k >= n:
        return {"mode": "all"}
    if k == 0:
        return {"mode": "none"}
    kth = float(np.partition(scores, n - k)[n - k])
    above = int((scores > kth).sum())
    ties = sorted(i for i, s in zip(ids, scores) if s == kth)
    return {"mode": "cut", "threshold": kth, "tie_doc_id": ties[k - above - 1]}


class ClipTopKStage(GlobalStage):
    name = "clip_topk"
    Config = ClipTopKConfig
    config: ClipTopKConfig

    def __init__(self, config: ClipTopKConfig | None = None) -> None:
        super().__init__(config)
        self.counts: Counter[str] = Counter()

    def collect(self, docs: list[Document]) -> list[dict]:
        out = []
        for doc in docs:
            score = doc_score(doc, self.config.score) if doc.kept else None
            if score is not None:
                out.append({"doc_id": doc.doc_id, "score": score})
        return out

    def fit(self, facts: list[dict]) -> dict:
        cfg = self.config
        if cfg.threshold is not None:
            return {"mode": "threshold", "threshold": cfg.threshold, "total": len(facts)}
        scores = np.array([f["score"] for f in facts], dtype=np.float64)
        k = cfg.count if cfg.count is not None else math.ceil(cfg.fraction * len(facts))
        decision = top_k_cut(scores, [f["doc_id"] for f in facts], k)
        return {**decision, "kept": min(k, len(facts)), "total": len(facts)}

    def apply(self, docs: list[Document], decision: dict) -> list[Document]:
        for doc in docs:
            if not doc.kept:
                continue
            score = doc_score(doc, self.config.score)
            reason = NOT_SCORED if score is None else _cut(score, doc.doc_id, decision)
            self.counts[reason or "kept"] += 1
            if reason:
                doc.drop(reason, self.name)
        return docs


def _cut(score: float, doc_id: str, decision: dict) -> str | None:
    mode = decision["mode"]
    if mode == "all":
        return None
    if mode == "none":
        return BELOW_CUT
    t = decision["threshold"]
    if mode == "threshold":
        return None if score >= t else BELOW_CUT
    keep = score > t or (score == t and doc_id <= decision["tie_doc_id"])
    return None if keep else BELOW_CUT

"""Keep the best documents of the whole corpus by CLIP score: a top fraction, a top
count, or a fixed threshold. A global stage: the cut is computed over every unit's
scores at once, never per shard.

Sources: DataComp (Gadre et al. 2023) keeps the top 30% of the pool by ViT-L/14
score (``fraction: 0.3``), or ViT-B/32 >= 0.25 (``threshold: 0.25``; LAION-2B used
0.28). VILA (Lin et al. 2024) sorts COYO by image-caption CLIP similarity and keeps
the top 25M (``count: 25000000``).

The score of a document is the mean ``matched_sim`` of its kept images (for a pair:
its image-caption similarity), or a numeric metadata field such as COYO's own
``clip_similarity_vitl14``. Top-k is exact: ties at the cut are broken by the
record's position in the input (``rid``, unique per record even when a doc_id
repeats), so exactly k documents pass. Documents without a score are dropped as
``not_scored``.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curation.document import Document
from curation.stage import FACT_ID, Decision, GlobalStage, StageConfig, UnitDecision

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


def top_k_cut(scores: np.ndarray, rids: np.ndarray, k: int) -> dict:
    """The k-th best record in (score desc, rid asc) order, in O(n): every record at or
    before it is kept, so exactly k pass even when scores tie or a doc_id repeats."""
    n = len(scores)
    if k >= n:
        return {"mode": "all"}
    if k == 0:
        return {"mode": "none"}
    kth = float(np.partition(scores, n - k)[n - k])
    above = int((scores > kth).sum())
    tied = np.sort(rids[scores == kth])
    return {"mode": "cut", "threshold": kth, "tie_rid": int(tied[k - above - 1])}


def wanted_count(cfg: ClipTopKConfig, total: int) -> int:
    return cfg.count if cfg.count is not None else math.ceil(cfg.fraction * total)


class ClipTopKStage(GlobalStage):
    name = "clip_topk"
    Config = ClipTopKConfig
    config: ClipTopKConfig
    fact_schema = pa.schema([("score", pa.float64())])

    @property
    def facts_ignore_images(self) -> bool:
        return self.config.score != "matched_sim"  # a metadata score

    def collect(self, docs: list[Document]) -> list[tuple[int, dict]]:
        out = []
        for i, doc in enumerate(docs):
            score = doc_score(doc, self.config.score) if doc.kept else None
            if score is not None:
                out.append((i, {"score": score}))
        return out

    def fit(self, facts: pa.Table) -> Decision:
        cfg = self.config
        total = facts.num_rows
        if cfg.threshold is not None:
            return Decision({"mode": "threshold", "threshold": cfg.threshold,
                             "total": total})
        k = wanted_count(cfg, total)
        scores = facts.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
        rids = facts.column(FACT_ID).to_numpy(zero_copy_only=False).astype(np.int64)
        cut = top_k_cut(scores, rids, k)
        return Decision({**cut, "kept": min(k, total), "total": total})

    def apply(self, docs: list[Document], decision: UnitDecision) -> list[Document]:
        for i, doc in enumerate(docs):
            if not doc.kept:
                continue
            score = doc_score(doc, self.config.score)
            reason = NOT_SCORED if score is None else \
                below_cut(score, decision.rids[i], decision.summary)
            if reason:
                doc.drop(reason, self.name)
        return docs


def below_cut(score: float, rid: int, cut: dict) -> str | None:
    mode = cut["mode"]
    if mode == "all":
        return None
    if mode == "none":
        return BELOW_CUT
    t = cut["threshold"]
    if mode == "threshold":
        return None if score >= t else BELOW_CUT
    keep = score > t or (score == t and rid <= cut["tie_rid"])
    return None if keep else BELOW_CUT

"""Stage names used in pipeline YAML -> stage classes.

Adding a stage means one import line here. Kept as an explicit table (no import-time
magic) so a newcomer can see every stage the YAML may name.
"""

from __future__ import annotations

import importlib

from curation.stage import Stage

# name -> "module:Class"; imported lazily so `curate stats` never imports torch.
STAGES: dict[str, str] = {
    "download": "curation.download.stage:DownloadStage",
    "dedup": "curation.dedup.stage:DedupStage",
    "image_dedup": "curation.dedup.images:ImageDedupStage",
    "image_frequency": "curation.dedup.images:ImageFrequencyStage",
    "clip_score": "curation.scoring.stage:ClipScoreStage",
    "image_similarity": "filters.image_similarity:ImageSimilarityFilter",
    "image_size": "filters.image_size:ImageSizeFilter",
    "image_aspect": "filters.image_aspect:ImageAspectFilter",
    "url_words": "filters.url_words:UrlWordsFilter",
    "doc_counts": "filters.doc_counts:DocCountsFilter",
    "doc_assignment_strength": "filters.doc_assignment_strength:AssignmentStrengthFilter",
    "clip_topk": "filters.clip_topk:ClipTopKStage",
}


def register(name: str, target: str) -> None:
    """Register an extra stage (e.g. a user's own filter) as ``module:Class``."""
    STAGES[name] = target


def stage_class(name: str) -> type[Stage]:
    target = STAGES[name]
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)

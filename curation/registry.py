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
}


def register(name: str, target: str) -> None:
    """Register an extra stage (e.g. a user's own filter) as ``module:Class``."""
    STAGES[name] = target


def stage_class(name: str) -> type[Stage]:
    target = STAGES[name]
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)

"""Distributed fits of the global stages, on Ray Data, one module per stage.

The runner stages a global stage's facts as Parquet (schema ``facts_schema(stage)``),
reads them as a Ray dataset and calls ``fit_distributed``; each fit decides what the
stage's in-process ``fit`` decides on the same facts (tested), without bringing
anything that grows with the corpus to the driver.
"""

from __future__ import annotations

import importlib
from typing import Any

import ray  # noqa: TID251 - the runner is where Ray lives

from curation.runner.fits.shuffle import task_shuffles
from curation.stage import GlobalStage, facts_schema

# stage name -> "module:function", each ``fn(stage, facts) -> (summary, rows | None)``
FITS: dict[str, str] = {
    "clip_topk": "curation.runner.fits.clip_topk:fit_clip_topk",
    "image_frequency": "curation.runner.fits.image_frequency:fit_image_frequency",
    "dedup": "curation.runner.fits.dedup:fit_dedup",
}


def fit_distributed(stage: GlobalStage, facts: ray.data.Dataset
                    ) -> tuple[dict[str, Any], ray.data.Dataset | None]:
    """The decision of ``stage.fit`` over ``facts`` (columns rid, unit and the stage's
    fact_schema): a small JSON-safe summary, and the decision rows (rid, unit and
    the stage's decision_schema) as a dataset, or None when the stage has no rows."""
    target = FITS.get(stage.name)
    if target is None:
        raise KeyError(f"no distributed fit for global stage {stage.name!r}")
    module, _, fn = target.partition(":")
    with task_shuffles():
        # a dataset keeps the context it was made in: re-root the facts in this one
        refs = facts.materialize().to_arrow_refs()
        facts = ray.data.from_arrow_refs(refs) if refs else \
            ray.data.from_arrow(facts_schema(stage).empty_table())
        return getattr(importlib.import_module(module), fn)(stage, facts)

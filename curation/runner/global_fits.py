"""Distributed engines for global stages' ``fit``, by stage name.

A global stage's own ``fit`` runs on the driver; a stage whose facts may not fit one
process (dedup) accepts an ``engine`` keyword, and the runner hands it the Ray Data
implementation registered here. Stages stay free of Ray imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# stage name -> "module:function" (the engine the stage's fit(facts, engine=...) calls)
DISTRIBUTED_ENGINES: dict[str, str] = {
    "dedup": "curation.runner.dedup_job:find_duplicates_distributed",
}


def distributed_engine(stage_name: str) -> Callable[..., Any] | None:
    target = DISTRIBUTED_ENGINES.get(stage_name)
    if target is None:
        return None
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)

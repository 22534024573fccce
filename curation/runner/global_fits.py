"""Distributed implementations of global stages' ``fit``, by stage name.

A global stage's own ``fit`` runs on the driver; a stage whose facts may not fit one
process (dedup) registers a Ray Data implementation here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# stage name -> "module:function(stage, facts) -> decision"
DISTRIBUTED_FITS: dict[str, str] = {}


def distributed_fit(stage_name: str) -> Callable[[Any, list[dict]], dict] | None:
    target = DISTRIBUTED_FITS.get(stage_name)
    if target is None:
        return None
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)

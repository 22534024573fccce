"""Superseded by ``curation.runner.fits`` (``fit_distributed(stage, facts)``).

Kept only so the current ``pipeline._fit`` still imports: no stage takes an
``engine`` any more, so every global stage fits in-process through this path until
the rewritten runner calls ``fits.fit_distributed`` on the staged facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DISTRIBUTED_ENGINES: dict[str, str] = {}


def distributed_engine(stage_name: str) -> Callable[..., Any] | None:
    return None

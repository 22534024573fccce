"""The stage contract: one class per stage, a batch of documents in, a batch out.

A stage never imports Ray; ``curation.runner`` alone maps stages onto the cluster.
Heavy state (a CLIP model, an HTTP session) is built in ``setup()``, once per worker.
Documents already dropped by an earlier stage pass through untouched (``process``
only sees the kept ones), so their reasons reach the writer and the stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from curation.document import Document


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs. ``num_gpus`` may be fractional."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    # A stateful stage (model, session) runs in a pool of long-lived actors.
    actor_pool: bool = False
    concurrency: int | None = None  # actors; None: the runner sizes the pool
    # process() calls one actor may run at once (threads); > 1 only for stages whose
    # process() is thread-safe (overlaps one unit's CPU work with another's model work)
    max_concurrent_calls: int = 1


class StageConfig(BaseModel):
    """Base of every stage's validated config: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Stage:
    """Base class: subclasses set ``name``, ``Config`` and implement ``process_kept``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[StageConfig]] = StageConfig

    def __init__(self, config: StageConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @property
    def resources(self) -> Resources:
        return Resources()

    def setup(self) -> None:
        """Build heavy state once per worker (default: nothing)."""

    def process(self, docs: list[Document]) -> list[Document]:
        """Run on the kept documents; dropped ones keep their place and reason."""
        kept = [d for d in docs if d.kept]
        if kept:
            self.process_kept(kept)
        return docs

    def process_kept(self, docs: list[Document]) -> None:
        """Mutate kept documents in place: set fields, drop images or documents."""
        raise NotImplementedError


class GlobalStage(Stage):
    """A stage that must see the whole corpus before it decides (dedup, global top-k).

    The runner first calls ``collect`` on every unit to get small per-document facts,
    hands all facts to ``fit`` (which returns a JSON-safe decision table), then calls
    ``apply`` on every unit with that table. ``fit`` may be given a runner-provided
    ``engine`` for distributed work; stages never import Ray themselves.
    """

    def collect(self, docs: list[Document]) -> list[dict]:
        raise NotImplementedError

    def fit(self, facts: list[dict]) -> dict:
        raise NotImplementedError

    def apply(self, docs: list[Document], decision: dict) -> list[Document]:
        raise NotImplementedError

    def process_kept(self, docs: list[Document]) -> None:  # pragma: no cover - not used
        raise TypeError(f"{self.name} is a global stage; the runner calls collect/fit/apply")

"""The stage contract: one class per stage, a batch of documents in, a batch out.

A stage never imports Ray; ``curation.runner`` alone maps stages onto the cluster.
Heavy state (a CLIP model, an HTTP session) is built in ``setup()``, once per worker.
Documents already dropped by an earlier stage pass through untouched (``process``
only sees the kept ones), so their reasons reach the writer and the stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
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
    #: Cheap and deterministic: on a later pass the runner may run it again instead of
    #: staging its output (a download or a model is never replayed).
    replayable: ClassVar[bool] = True
    #: Removes images: a kept document left with no image is then dropped as
    #: ``no_images`` by the runner (unless the pipeline keeps text-only documents).
    removes_images: ClassVar[bool] = False

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


@dataclass
class Decision:
    """What a global stage decided, as data.

    ``summary`` is small and per run (a cut value, counts): it travels to every task.
    ``rows`` holds one row per affected record (``rid``, ``unit`` and the stage's
    ``decision_schema`` columns); the runner writes it partitioned by unit, so each
    unit reads only its own slice."""

    summary: dict[str, Any]
    rows: pa.Table | None = None


@dataclass
class UnitDecision:
    """The slice of a decision that one unit needs when ``apply`` runs on it."""

    summary: dict[str, Any]
    rows: dict[int, list[dict[str, Any]]]  # index in the batch -> that record's rows
    rids: list[int]  # record id of each document of the batch (unique, input order)


FACT_ID = "rid"  # int64, unique per record in a run, increasing in input order
FACT_UNIT = "unit"  # the work unit a record belongs to


class GlobalStage(Stage):
    """A stage that must see the whole corpus before it decides (dedup, global top-k).

    1. ``collect(docs)`` on every unit: small facts, ``(index in docs, row)`` pairs
       with the ``fact_schema`` columns; the runner adds ``rid`` and ``unit`` and
       stages them as Parquet, never on the driver.
    2. A fit over all facts: ``fit(table)`` is the in-process reference (tests, small
       corpora, run inside a Ray task); ``curation/runner/fits/`` holds the
       distributed Ray Data version of each stage, which must decide the same.
    3. ``apply(docs, unit_decision)`` on every unit with its own slice of the rows.
    Stages never import Ray.
    """

    fact_schema: ClassVar[pa.Schema] = pa.schema([])
    decision_schema: ClassVar[pa.Schema] = pa.schema([])
    # apply drops exactly the kept documents named in the decision rows and changes
    # nothing else: the next global stage may collect its facts before it (early)
    drops_documents_only: ClassVar[bool] = False
    # apply only drops the images named in the decision rows (a document left without
    # one is then dropped by the runner's no_images rule): a later stage whose facts do
    # not depend on images may still collect early, leaving out the emptied documents
    removes_images_only: ClassVar[bool] = False

    @property
    def facts_ignore_images(self) -> bool:
        """Whether ``collect`` reads nothing of a kept document's images (so dropping
        some of them changes no fact)."""
        return False

    def collect(self, docs: list[Document]) -> list[tuple[int, dict[str, Any]]]:
        raise NotImplementedError

    def fit(self, facts: pa.Table) -> Decision:
        raise NotImplementedError

    def apply(self, docs: list[Document], decision: UnitDecision) -> list[Document]:
        raise NotImplementedError

    def process_kept(self, docs: list[Document]) -> None:  # pragma: no cover - not used
        raise TypeError(f"{self.name} is a global stage; the runner calls collect/fit/apply")


def facts_schema(stage: GlobalStage) -> pa.Schema:
    """Full schema of a stage's staged facts: rid, unit, then the stage's columns."""
    return pa.schema([(FACT_ID, pa.int64()), (FACT_UNIT, pa.string()),
                      *stage.fact_schema])


def decision_rows_schema(stage: GlobalStage) -> pa.Schema:
    return pa.schema([(FACT_ID, pa.int64()), (FACT_UNIT, pa.string()),
                      *stage.decision_schema])

"""Run a pass's ops over one unit of documents (inside a Ray task or actor).

Three rules hold after every op:
- a stage that raises on a batch is re-run one document at a time; a document whose
  content is bad (a data error) is dropped as ``stage_error:<Exception>``; anything
  else (memory, storage, CUDA, lost connections of our own) is an infrastructure
  fault and raises ``InfrastructureError`` so Ray retries the task and the run stops
  loudly if it persists;
- a kept document that had images before an op and has none after it is dropped as
  ``no_images`` by that op (unless the pipeline keeps text-only documents);
- the op returns every document it was given, in order (dropped ones keep flowing,
  so stats are sums of recorded reasons).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from curation.decisions import unit_decision, unit_rids
from curation.document import IMAGE_OK, IMAGE_PENDING, Document
from curation.errors import InfrastructureError, is_data_error
from curation.location import Location
from curation.runner.plan import Op
from curation.services import bind_services

log = logging.getLogger(__name__)
NO_IMAGES = "no_images"
_LIVE = (IMAGE_PENDING, IMAGE_OK)
MAX_ERROR_SAMPLES = 3


@dataclass
class UnitReport:
    """What one unit's pass tells the driver: small, summed by key."""

    unit: str
    documents: int = 0
    images: int = 0
    kept: int = 0
    processed: dict[str, int] = field(default_factory=dict)  # op -> documents seen
    errors: dict[str, int] = field(default_factory=dict)  # op -> data errors
    first_errors: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    # the last unit of its input file: the shard packer then knows what follows it
    file_end: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def live_images(doc: Document) -> int:
    return sum(im.status in _LIVE for im in doc.images)


class DecisionReader:
    """A global stage's decision as the units read it: a small summary (read once
    per worker) and this unit's own rows file, if the fit wrote one."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._summary: dict | None = None

    def summary(self) -> dict:
        if self._summary is None:
            self._summary = self.location.read_json("_summary.json")
        return self._summary

    def rows(self, unit: str):
        try:
            return self.location.read_parquet(f"{unit}.parquet")
        except FileNotFoundError:
            return None


@dataclass
class ChainSettings:
    keep_text_only: bool = False
    decisions: dict[int, Location] = field(default_factory=dict)  # pass -> decision dir
    # long-lived service actors of the pass (the downloader's), by service name
    services: dict[str, Any] | None = None


class OpRunner:
    """Runs ops over units; one per task call or one per actor (``setup`` once)."""

    def __init__(self, ops: list[Op], settings: ChainSettings) -> None:
        self.ops = ops
        self.settings = settings
        self.readers = {k: DecisionReader(loc) for k, loc in settings.decisions.items()}
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            stages = [op.stage for op in self.ops if op.kind == "stage"]
            bind_services(stages, self.settings.services)
            for stage in stages:
                stage.setup()
            self._ready = True

    def run(self, unit: str, docs: list[Document], report: UnitReport) -> list[Document]:
        self.setup()
        for op in self.ops:
            t0 = time.perf_counter()
            before = [live_images(d) if d.kept else 0 for d in docs]
            out = self._run_op(op, unit, docs, report)
            if len(out) != len(docs):
                raise InfrastructureError(op.label, unit, RuntimeError(
                    f"returned {len(out)} documents for {len(docs)}; a stage must return "
                    "every document it is given, dropped ones included"))
            docs = out
            self._no_images(op, docs, before)
            report.timing[op.label] = report.timing.get(op.label, 0.0) + \
                time.perf_counter() - t0
        return docs

    def _run_op(self, op: Op, unit: str, docs: list[Document],
                report: UnitReport) -> list[Document]:
        kept = sum(d.kept for d in docs)
        report.processed[op.label] = report.processed.get(op.label, 0) + kept
        if op.kind == "apply":
            reader = self.readers[op.decision]  # type: ignore[index]
            decision = unit_decision(reader.summary(), reader.rows(unit),
                                     unit_rids(unit, len(docs)))
            return op.stage.apply(docs, decision)
        try:
            return op.stage.process(docs)
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_data_error(exc):
                raise InfrastructureError(op.label, unit, exc) from exc
        return [self._one(op, unit, doc, report) for doc in docs]

    def _one(self, op: Op, unit: str, doc: Document, report: UnitReport) -> Document:
        try:
            out = op.stage.process([doc])
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_data_error(exc):
                raise InfrastructureError(op.label, unit, exc) from exc
            where = doc.provenance.location()
            log.warning("%s failed on %s (%s): %s: %s", op.label, doc.doc_id, where,
                        type(exc).__name__, exc)
            report.errors[op.label] = report.errors.get(op.label, 0) + 1
            if len(report.first_errors) < MAX_ERROR_SAMPLES:
                report.first_errors.append(f"{op.label}: {where}: {type(exc).__name__}: "
                                           f"{str(exc)[:200]}")
            doc.drop(f"stage_error:{type(exc).__name__}", op.stage.name)
            return doc
        if len(out) != 1:
            raise InfrastructureError(op.label, unit, RuntimeError(
                "a stage must return the one document it was given"))
        return out[0]

    def _no_images(self, op: Op, docs: list[Document], before: list[int]) -> None:
        if self.settings.keep_text_only or getattr(op.stage.config, "keep_text_only",
                                                   False):
            return
        for doc, had in zip(docs, before):
            if had and doc.kept and not live_images(doc):
                doc.drop(NO_IMAGES, op.stage.name)


def finish_report(report: UnitReport, docs: list[Document]) -> UnitReport:
    report.documents = len(docs)
    report.images = sum(len(d.images) for d in docs)
    report.kept = sum(d.kept for d in docs)
    return report

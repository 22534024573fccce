"""The callables Ray Data maps over units: start, ops, end of a pass.

A row between Ray operations is ``{"unit", "payload", "report"}``: the unit's
documents as one batch_codec blob and its running ``UnitReport`` (JSON). The last
operation of a pass writes what the pass leaves behind and returns a small row
``{"unit", "report"}`` for the driver's progress and error accounting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from curation.batch_codec import decode_docs, encode_docs
from curation.decisions import LIVE_IMAGES, facts_table, unit_rids
from curation.document import Document
from curation.location import Location
from curation.pipeline_config import IngestConfig
from curation.runner.chain import (
    ChainSettings,
    OpRunner,
    UnitReport,
    finish_report,
    live_images,
)
from curation.runner.ingest import ingest_file
from curation.runner.plan import Op
from curation.stage import GlobalStage
from shards.writer import write_unit


class End(Protocol):
    def __call__(self, unit: str, docs: list[Document], report: UnitReport) -> dict: ...


def report_row(unit: str, report: UnitReport, **extra: Any) -> dict[str, Any]:
    return {"unit": unit, "report": json.dumps(report.to_dict()), **extra}


def _report_of(row: dict[str, Any]) -> UnitReport:
    raw = row.get("report")
    return UnitReport(**json.loads(raw)) if raw else UnitReport(row["unit"])


@dataclass
class StageEnd:
    """End of a non-final pass: stage the documents (when later passes start from
    them), the facts of later global stages collected early, then the facts of the
    next global stage (the unit's marker, written last)."""

    docs: Location | None
    facts: Location | None
    collect_for: GlobalStage | None
    # (where, stage, with each document's live-image count) for facts collected early
    early: list[tuple[Location, GlobalStage, bool]] = field(default_factory=list)

    def __call__(self, unit: str, docs: list[Document], report: UnitReport) -> dict:
        if self.docs is not None:
            self.docs.write_bytes(f"{unit}.cdb", encode_docs(docs),
                                  durable=self.facts is None)  # else facts are the marker
        rids = unit_rids(unit, len(docs))
        for where, stage, live in self.early:
            collected = stage.collect(docs)
            table = facts_table(stage, unit, rids, collected)
            if live:
                table = table.append_column(LIVE_IMAGES, pa.array(
                    [live_images(docs[i]) for i, _ in collected], pa.int32()))
            where.write_parquet(f"{unit}.parquet", table, durable=False)
        if self.facts is not None and self.collect_for is not None:
            table = facts_table(self.collect_for, unit, rids,
                                self.collect_for.collect(docs))
            self.facts.write_parquet(f"{unit}.parquet", table)
        return report_row(unit, finish_report(report, docs))


@dataclass
class WriteEnd:
    """End of the final pass: the unit's piece, drop tables and stats (marker). The
    row also carries the piece's sample lengths (int64 bytes) for the shard packer."""

    output: Location
    pieces: Location

    def __call__(self, unit: str, docs: list[Document], report: UnitReport) -> dict:
        _, lengths = write_unit(docs, unit, self.output, self.pieces)
        return report_row(unit, finish_report(report, docs),
                          lengths=np.asarray(lengths, np.int64).tobytes())


class UnitChain:
    """Ops of one Ray operation. As a task function it sets stages up per call; as an
    actor class (``eager_setup``) once per actor. Rows without a payload are loaded
    from ``source`` (the staged documents the pass starts from)."""

    def __init__(self, ops: list[Op], settings: ChainSettings, source: Location | None = None,
                 end: End | None = None, eager_setup: bool = False) -> None:
        self.runner = OpRunner(ops, settings)
        self.source = source
        self.end = end
        if eager_setup:
            self.runner.setup()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        unit = row["unit"]
        payload = row.get("payload")
        if payload is None:
            assert self.source is not None, "a row without documents needs a source"
            payload = self.source.read_bytes(f"{unit}.cdb")
        report = _report_of(row)
        docs = self.runner.run(unit, decode_docs(payload), report)
        if self.end is not None:
            return self.end(unit, docs, report)
        return report_row(unit, report, payload=encode_docs(docs))


def bound_chain(ops: list[Op], settings: ChainSettings, source: Location | None,
                end: End | None) -> type[UnitChain]:
    """An actor class with its ops bound at class level: Ray Data then passes no
    constructor arguments through the object store (which would make restarted
    actors depend on objects that may be gone)."""

    def init(self: UnitChain) -> None:
        UnitChain.__init__(self, ops, settings, source=source, end=end, eager_setup=True)

    return type("UnitChainActor", (UnitChain,), {"__init__": init})


class IngestChain:
    """Read input files into units and run the pass's first ops on them right away
    (streaming: a unit moves on as soon as it is read)."""

    def __init__(self, cfg: IngestConfig, ingest_dir: Location, output: Location,
                 stage_units: bool, skip: dict[int, frozenset[str]],
                 ops: list[Op], settings: ChainSettings, end: End | None) -> None:
        self.cfg, self.ingest_dir, self.output = cfg, ingest_dir, output
        self.stage_units, self.skip = stage_units, skip
        self.runner = OpRunner(ops, settings) if ops else None
        self.end = end

    def __call__(self, batch: dict[str, Any]) -> Iterator[dict[str, list]]:
        for index, path in zip(batch["index"], batch["path"]):
            index = int(index)
            for unit, docs, last in ingest_file(index, str(path), self.cfg,
                                                self.ingest_dir, self.output,
                                                self.stage_units,
                                                self.skip.get(index, frozenset())):
                report = UnitReport(unit, file_end=last)
                if self.runner is not None:
                    docs = self.runner.run(unit, docs, report)
                if self.end is not None:
                    row = self.end(unit, docs, report)
                else:
                    row = report_row(unit, report, payload=encode_docs(docs))
                yield {k: [v] for k, v in row.items()}

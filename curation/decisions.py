"""Facts and decisions of global stages as Arrow tables (no Ray here).

The runner stages ``facts_table`` per unit, fits over all of them (in a Ray task or
distributed, curation/runner/fits/), writes the decision rows partitioned by unit, and
gives each unit its ``unit_decision``. ``run_global_local`` does the same three steps
in-process over one list of documents: the reference the distributed fits are tested
against, and a way to use a global stage as a library.
"""

from __future__ import annotations

import pyarrow as pa

from curation.document import Document
from curation.stage import (
    FACT_ID,
    FACT_UNIT,
    Decision,
    GlobalStage,
    UnitDecision,
    decision_rows_schema,
    facts_schema,
)

UNIT_BITS = 20  # documents per unit < 2**20
# facts collected before an image-removing decision applied carry each document's
# live-image count, so the fit can leave out the documents that decision empties
LIVE_IMAGES = "_live_images"
CHUNK_BITS = 20  # units per input file < 2**20


def record_id(file_index: int, chunk: int, position: int) -> int:
    """Unique, input-ordered id of a record: input file, unit chunk, position."""
    return (file_index << (CHUNK_BITS + UNIT_BITS)) | (chunk << UNIT_BITS) | position


def unit_rids(unit: str, count: int) -> list[int]:
    """Record ids of the ``count`` documents of unit ``FFFFF-CCCCC``."""
    file_index, chunk = (int(p) for p in unit.split("-")[:2])
    base = record_id(file_index, chunk, 0)
    return [base + i for i in range(count)]


def facts_table(stage: GlobalStage, unit: str, rids: list[int],
                collected: list[tuple[int, dict]]) -> pa.Table:
    """A unit's facts with ``rid`` and ``unit`` added, in the stage's schema."""
    schema = facts_schema(stage)
    # by column: no dict per row (facts of every unit pass through here)
    columns: dict[str, list] = {FACT_ID: [rids[i] for i, _ in collected],
                                FACT_UNIT: [unit] * len(collected)}
    for name in stage.fact_schema.names:
        columns[name] = [fact.get(name) for _, fact in collected]
    return pa.Table.from_pydict(columns, schema=schema)


def unit_decision(summary: dict, rows: pa.Table | None, rids: list[int]) -> UnitDecision:
    """The slice one unit needs: its decision rows keyed by index in the batch."""
    index = {rid: i for i, rid in enumerate(rids)}
    by_doc: dict[int, list[dict]] = {}
    if rows is not None and rows.num_rows:
        for row in rows.to_pylist():
            i = index.get(row[FACT_ID])
            if i is not None:
                by_doc.setdefault(i, []).append(row)
    return UnitDecision(summary, by_doc, rids)


def empty_rows(stage: GlobalStage) -> pa.Table:
    return decision_rows_schema(stage).empty_table()


def run_global_local(stage: GlobalStage, docs: list[Document],
                     unit: str = "00000-00000") -> tuple[list[Document], Decision]:
    """collect -> fit -> apply over one in-memory batch (record ids = positions)."""
    rids = unit_rids(unit, len(docs))
    facts = facts_table(stage, unit, rids, stage.collect(docs))
    decision = stage.fit(facts)
    docs = stage.apply(docs, unit_decision(decision.summary, decision.rows, rids))
    return docs, decision

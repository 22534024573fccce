"""The ``dedup`` pipeline stage: exact (URL, text) and MinHash-LSH near-duplicates.

collect() turns a unit of documents into small facts (signatures included), fit()
clusters the facts of the whole corpus and names the duplicates, apply() drops them
with ``duplicate_<method>``. fit() is the in-process reference (numpy); the runner's
distributed version (curation/runner/fits/) decides the same on Ray Data.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from curation.dedup.facts import FACT_SCHEMA, FactTable, compute_facts
from curation.dedup.finder import find_duplicates
from curation.dedup.params import DedupConfig
from curation.document import Document
from curation.stage import (
    FACT_ID,
    FACT_UNIT,
    Decision,
    GlobalStage,
    UnitDecision,
    decision_rows_schema,
)

DECISION_SCHEMA = pa.schema([
    ("method", pa.string()), ("duplicate_of", pa.string()),
    ("duplicate_of_location", pa.string()), ("similarity", pa.float64()),
])


def decision_from(facts: pa.Table, duplicates: list[dict]) -> Decision:
    """Decision rows (rid, unit, method, duplicate_of, ...) from ``resolve``'s
    removed records, which name their row of ``facts`` as ``node``."""
    rid = facts.column(FACT_ID).to_pylist()
    unit = facts.column(FACT_UNIT).to_pylist()
    rows = [{FACT_ID: rid[d["node"]], FACT_UNIT: unit[d["node"]],
             **{k: d[k] for k in DECISION_SCHEMA.names}} for d in duplicates]
    table = pa.Table.from_pylist(rows, schema=decision_rows_schema(DedupStage))
    return Decision({"counts": dict(Counter(d["method"] for d in duplicates)),
                     "documents": facts.num_rows}, table.sort_by(FACT_ID))


class DedupStage(GlobalStage):
    name = "dedup"
    Config = DedupConfig
    config: DedupConfig
    fact_schema = FACT_SCHEMA
    decision_schema = DECISION_SCHEMA
    drops_documents_only = True

    def collect(self, docs: list[Document]) -> list[tuple[int, dict]]:
        kept = [i for i, d in enumerate(docs) if d.kept]
        facts = compute_facts([docs[i] for i in kept], self.config)
        return list(zip(kept, facts))

    def fit(self, facts: pa.Table) -> Decision:
        # node order = input order: a large bucket's star starts at its first record
        facts = facts.sort_by(FACT_ID)
        table = FactTable.from_columns(facts.to_pydict(), self.config.num_perm)
        return decision_from(facts, find_duplicates(table, self.config))

    def apply(self, docs: list[Document], decision: UnitDecision) -> list[Document]:
        for i, rows in decision.rows.items():
            doc, hit = docs[i], rows[0]
            if not doc.kept:
                continue
            doc.metadata["dedup"] = {k: hit[k] for k in ("duplicate_of", "method",
                                                         "similarity")}
            doc.drop(f"duplicate_{hit['method']}", self.name)
        return docs

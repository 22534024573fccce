"""The ``dedup`` pipeline stage: exact (URL, text) and MinHash-LSH near-duplicates.

collect() turns a unit of documents into small facts (signatures included), fit()
clusters the facts of the whole corpus and names the duplicates, apply() drops them
with ``duplicate_<method>``. fit() runs in-process with numpy; from
``distributed_min_docs`` facts on it uses the ``engine`` the runner passes, normally
``curation.runner.dedup_job.find_duplicates_distributed`` (Ray Data shuffle).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from curation.dedup.facts import FactTable, compute_facts
from curation.dedup.finder import find_duplicates
from curation.dedup.params import DedupConfig
from curation.document import Document
from curation.stage import GlobalStage

Engine = Callable[[list[dict], DedupConfig], list[dict]]


def decision_from(duplicates: list[dict]) -> dict:
    """JSON-safe decision table (also the content of duplicates.parquet)."""
    return {"duplicates": duplicates,
            "counts": dict(Counter(d["method"] for d in duplicates))}


class DedupStage(GlobalStage):
    name = "dedup"
    Config = DedupConfig

    def __init__(self, config: DedupConfig | None = None) -> None:
        super().__init__(config)
        self._lookup: tuple[int, dict] | None = None  # (id(decision), index) cache

    def collect(self, docs: list[Document]) -> list[dict]:
        return compute_facts(docs, self.config)

    def fit(self, facts: list[dict], engine: Engine | None = None) -> dict:
        cfg = self.config
        if engine is not None and len(facts) >= cfg.distributed_min_docs:
            return decision_from(engine(facts, cfg))
        table = FactTable.from_records(facts, cfg.num_perm)
        return decision_from(find_duplicates(table, cfg))

    def _index(self, decision: dict) -> dict:
        if self._lookup is None or self._lookup[0] != id(decision):
            index = {(d["doc_id"], d["location"]): d for d in decision["duplicates"]}
            self._lookup = (id(decision), index)
        return self._lookup[1]

    def apply(self, docs: list[Document], decision: dict) -> list[Document]:
        index = self._index(decision)
        for doc in docs:
            if not doc.kept:
                continue
            hit = index.get((doc.doc_id, doc.provenance.location()))
            if hit is None:
                continue
            doc.metadata["dedup"] = {k: hit[k] for k in ("duplicate_of", "method",
                                                         "similarity")}
            doc.drop(f"duplicate_{hit['method']}", self.name)
        return docs

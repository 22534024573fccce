"""The per-unit work done inside Ray tasks and actors (no driver state).

A row moving between Ray operations is ``{"unit": id, "payload": bytes}`` where the
payload is a batch_codec blob of the unit's documents.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from curation.batch_codec import decode_docs, encode_docs
from curation.document import Document
from curation.ingest.quarantine import QuarantineRecord
from curation.ingest.reader import read_input
from curation.pipeline_config import IngestConfig
from curation.services import bind_services
from curation.stage import GlobalStage, Stage
from curation.storage import read_json, write_bytes, write_json, write_parquet
from shards.layout import join, unit_id_for
from shards.writer import ShardLimits, write_unit

log = logging.getLogger(__name__)


def ingest_file(row: dict[str, Any], output: str, cfg: IngestConfig,
                storage_options: dict | None) -> dict[str, Any]:
    """Read one input file into staged units of ``docs_per_unit`` documents; bad
    records go to the file's quarantine part. The ``.done`` marker is written last."""
    index, path = int(row["index"]), row["path"]
    units: list[str] = []
    batch: list[Document] = []
    bad: list[dict] = []
    n_docs = 0

    def flush() -> None:
        unit = unit_id_for(index, len(units))
        write_bytes(join(output, "_work", "ingest", f"{unit}.cdb"), encode_docs(batch),
                    storage_options)
        units.append(unit)
        batch.clear()

    try:
        for item in read_input(path, cfg, storage_options):
            if isinstance(item, QuarantineRecord):
                bad.append(item.to_dict())
                continue
            batch.append(item)
            n_docs += 1
            if len(batch) >= cfg.docs_per_unit:
                flush()
    except Exception as exc:  # noqa: BLE001 - a broken file is quarantined, run goes on
        bad.append(QuarantineRecord(path, "unreadable_file", f"{type(exc).__name__}: "
                                    f"{exc}", line=None).to_dict())
    if batch:
        flush()
    lines = "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bad)
    write_bytes(join(output, "_work", "quarantine", f"{index:05d}.jsonl"),
                lines.encode("utf-8"), storage_options)
    summary = {"index": index, "path": path, "units": units, "documents": n_docs,
               "quarantined": len(bad)}
    write_json(join(output, "_work", "ingest", f"{index:05d}.done.json"), summary,
               storage_options)
    return summary


def run_stages(stages: list[Stage], docs: list[Document]) -> list[Document]:
    for stage in stages:
        docs = _process_isolated(stage, docs)
    return docs


def _process_isolated(stage: Stage, docs: list[Document]) -> list[Document]:
    """Run a stage on a batch; if it raises, re-run it one document at a time and drop
    only the documents that still fail (reason names the exception), so one bad record
    never kills a run."""
    try:
        return stage.process(docs)
    except Exception:  # noqa: BLE001
        out: list[Document] = []
        for doc in docs:
            try:
                out.extend(stage.process([doc]))
            except Exception as exc:  # noqa: BLE001
                log.warning("%s failed on %s (%s): %s", stage.name, doc.doc_id,
                            doc.provenance.location(), exc)
                doc.drop(f"stage_error:{type(exc).__name__}", stage.name)
                out.append(doc)
        return out


class StageChain:
    """Callable for a fused group of stages: decode, run each stage, encode.

    Used both as a plain task function (setup per call) and as an actor class
    (setup once per actor, in ``__init__``)."""

    def __init__(self, stages: list[Stage], apply_global: GlobalStage | None = None,
                 decision_uri: str | None = None, storage_options: dict | None = None,
                 eager_setup: bool = False, services: dict | None = None) -> None:
        self.stages = stages
        self.services = services  # service clients (curation.runner.services)
        self.apply_global = apply_global
        self.decision_uri = decision_uri
        self.storage_options = storage_options
        self._decision: dict | None = None
        self._ready = False
        if eager_setup:
            self._setup()

    def _setup(self) -> None:
        if not self._ready:
            bind_services(self.stages, self.services)
            for stage in self.stages:
                stage.setup()
            if self.apply_global is not None and self.decision_uri:
                self._decision = read_json(self.decision_uri, self.storage_options)
            self._ready = True

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        self._setup()
        docs = decode_docs(row["payload"])
        t0 = time.perf_counter()
        if self.apply_global is not None:
            docs = self.apply_global.apply(docs, self._decision or {})
        docs = run_stages(self.stages, docs)
        timing = _timing(row)
        label = "+".join(s.name for s in self.stages) or "apply"
        timing[label] = timing.get(label, 0.0) + time.perf_counter() - t0
        return {"unit": row["unit"], "payload": encode_docs(docs),
                "timing": json.dumps(timing)}


def load_unit(row: dict[str, Any], src: str, storage_options: dict | None) -> dict[str, Any]:
    import fsspec

    with fsspec.open(join(src, f"{row['unit']}.cdb"), "rb", **(storage_options or {})) as f:
        return {"unit": row["unit"], "payload": f.read(), "timing": "{}"}


def _timing(row: dict[str, Any]) -> dict:
    t = row.get("timing") or "{}"
    return json.loads(t) if isinstance(t, str) else dict(t)


def stage_unit(row: dict[str, Any], dest: str, collect_for: GlobalStage,
               storage_options: dict | None) -> dict[str, Any]:
    """End of a non-final segment: stage the documents, then the facts (the marker)."""
    docs = decode_docs(row["payload"])
    unit = row["unit"]
    write_bytes(join(dest, f"{unit}.cdb"), row["payload"], storage_options)
    facts = collect_for.collect([d for d in docs if d.kept])
    write_parquet(join(dest, f"{unit}.facts.parquet"), facts, storage_options=storage_options)
    return {"unit": unit, "summary": json.dumps({"documents": len(docs),
                                                 "timing": _timing(row)})}


def write_final_unit(row: dict[str, Any], output: str, limits: ShardLimits,
                     storage_options: dict | None) -> dict[str, Any]:
    docs = decode_docs(row["payload"])
    t0 = time.perf_counter()
    stats = write_unit(docs, output, row["unit"], limits, storage_options)
    timing = _timing(row)
    timing["write"] = time.perf_counter() - t0
    return {"unit": row["unit"], "summary": json.dumps({**stats, "timing": timing})}

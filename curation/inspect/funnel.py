"""The curation funnel (input -> dedup -> download -> filters -> written), built only
from recorded reasons (the summed unit stats, or a run's stats.json).

Steps follow the stage order of ``_pipeline.json``; each step removes the documents and
images whose ``"stage:reason"`` key names that stage. Images of a dropped document keep
their last status (``ok``, or ``pending`` when dropped before download): when the drop
tables have ``images_with_doc`` they are removed at the dropping stage, otherwise once
at the end as ``with_dropped_documents``. Either way
``images_in == images_written + sum(images_dropped) + (ok - images_written)``.

A run that read another run's output can count, among its images, records the earlier
run had already dropped (they travel inside the written documents): keys naming a
stage that this run does not have are shown as one ``carried`` step after the input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

NO_STAGE = "None"  # what count_unit writes for a status set without a stage


@dataclass
class Step:
    """One row of the funnel: what is left after ``stage`` and what it removed."""

    label: str
    kind: str  # input | carried | dedup | download | score | filter | other | written
    documents: int
    images: int
    stage: str | None = None
    documents_dropped: dict[str, int] = field(default_factory=dict)  # reason -> n
    images_dropped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Funnel:
    steps: list[Step]
    errors: list[str]
    warnings: list[str]
    carried_images: int = 0  # image records dropped by an earlier run (lineage)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "errors": self.errors,
                "warnings": self.warnings}


def split_key(key: str) -> tuple[str, str]:
    stage, _, reason = key.partition(":")
    return (stage, reason) if reason else (NO_STAGE, key)


def by_stage(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, n in counts.items():
        stage, reason = split_key(key)
        out.setdefault(stage, {})[reason] = out.get(stage, {}).get(reason, 0) + int(n)
    return out


def pipeline_stages(pipeline: dict | None) -> list[str]:
    order: list[str] = []
    for item in (pipeline or {}).get("stages") or []:
        name = item if isinstance(item, str) else next(iter(item), None) \
            if isinstance(item, dict) else None
        if name and str(name) not in order:
            order.append(str(name))
    return order


def stage_order(pipeline: dict | None, *counters: dict[str, int]) -> list[str]:
    """Stage names in pipeline order, then stages seen only in reason keys (sorted)."""
    order = pipeline_stages(pipeline)
    seen = sorted({split_key(k)[0] for c in counters for k in c} - set(order) - {NO_STAGE})
    return order + seen


def stage_kind(stage: str, doc_reasons: dict[str, int]) -> str:
    low = stage.lower()
    if "dedup" in low or any(r.startswith("duplicate") for r in doc_reasons):
        return "dedup"
    if "download" in low or "fetch" in low:
        return "download"
    if "score" in low or "clip" in low and "topk" not in low:
        return "score"
    return "filter"


def carried_keys(pipeline: dict | None, images_dropped: dict[str, int]) -> dict[str, int]:
    """Image drop keys of a run with lineage that name no stage of this run (images
    without a stage, e.g. never downloaded, are not the earlier run's drops)."""
    if not (pipeline or {}).get("lineage"):
        return {}
    own = set(pipeline_stages(pipeline)) | {NO_STAGE}
    return {k: int(n) for k, n in images_dropped.items()
            if split_key(k)[0] not in own and n}


def build_funnel(totals: dict[str, Any], pipeline: dict | None,
                 with_docs: dict[str, int] | None) -> Funnel:
    """The steps of one run from its totals (documents_in, images_in, documents_dropped,
    images_dropped, documents_written, images_written, bytes_written, shards,
    quarantined, documents_ingested) and, when known, the images that left with each
    stage's dropped documents."""
    carried = carried_keys(pipeline, totals["images_dropped"])
    img_counts = {k: v for k, v in totals["images_dropped"].items() if k not in carried}
    doc_drops = by_stage(totals["documents_dropped"])
    img_drops = by_stage(img_counts)
    # "pending" images were never processed: they left with their document (placed by
    # the drop table's images_with_doc when present), or stay unwritten in a kept one.
    img_drops.get(NO_STAGE, {}).pop("pending", None)
    docs, images = int(totals["documents_in"]), int(totals["images_in"])
    steps = [Step("input", "input", docs, images, notes={
        "quarantined": dict(totals.get("quarantined") or {}),
        "documents_ingested": totals.get("documents_ingested", docs)})]
    if carried:
        images -= sum(carried.values())
        steps.append(Step("(parent's drops)", "carried", docs, images,
                          images_dropped=dict(sorted(carried.items()))))
    stages = stage_order(pipeline, totals["documents_dropped"], img_counts)
    if doc_drops.get(NO_STAGE) or img_drops.get(NO_STAGE):
        stages.append(NO_STAGE)
    for stage in stages:
        d, i = dict(doc_drops.get(stage, {})), dict(img_drops.get(stage, {}))
        if with_docs and with_docs.get(stage):
            i["with_dropped_documents"] = with_docs[stage]
        docs -= sum(d.values())
        images -= sum(i.values())
        kind = "other" if stage == NO_STAGE else stage_kind(stage, d)
        label = "(no stage recorded)" if stage == NO_STAGE else stage
        steps.append(Step(label, kind, docs, images, stage, dict(sorted(d.items())),
                          dict(sorted(i.items()))))
    written = Step("written", "written", int(totals["documents_written"]),
                   int(totals["images_written"]),
                   notes={"bytes": int(totals.get("bytes_written") or 0),
                          "shards": int(totals.get("shards") or 0)})
    if images != written.images:
        written.images_dropped = {"not_written" if with_docs is not None
                                  else "with_dropped_documents": images - written.images}
    steps.append(written)
    errors: list[str] = []
    warnings: list[str] = []
    if docs != written.documents:
        errors.append(f"funnel: {docs} documents left after the last stage but "
                      f"{written.documents} written")
    if images < written.images:
        errors.append(f"funnel: {images} images left after the last stage but "
                      f"{written.images} written")
    elif with_docs is not None and images > written.images:
        warnings.append(f"funnel: {images - written.images} images of kept "
                        "documents were not written (still pending: no download stage?)")
    return Funnel(steps, errors, warnings, sum(carried.values()))

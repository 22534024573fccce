"""The curation funnel (input -> dedup -> download -> filters -> written), built only
from recorded reasons, plus the checks that every count adds up.

Steps follow the stage order of ``_pipeline.json``; each step removes the documents and
images whose ``"stage:reason"`` key names that stage. Images of a dropped document keep
their last status (``ok``, or ``pending`` when dropped before download): when the drop
table has ``images_with_doc`` they are removed at the dropping stage, otherwise once at
the end as ``with_dropped_documents``. Either way
``images_in == images_written + sum(images_dropped) + (ok - images_written)``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from curation.inspect.checks import check_manifest, check_run_stats, check_unit
from curation.inspect.load import OutputView

SUMMED = ("documents_in", "documents_written", "images_in", "images_written",
          "bytes_written")
COUNTED = ("documents_dropped", "image_status", "images_dropped", "sources")
NO_STAGE = "None"  # what count_unit writes for a status set without a stage


@dataclass
class Step:
    """One row of the funnel: what is left after ``stage`` and what it removed."""

    label: str
    kind: str  # input | dedup | download | filter | other | written
    documents: int
    images: int
    stage: str | None = None
    documents_dropped: dict[str, int] = field(default_factory=dict)  # reason -> n
    images_dropped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Funnel:
    steps: list[Step]
    totals: dict[str, Any]
    errors: list[str]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "totals": self.totals,
                "errors": self.errors, "warnings": self.warnings}


def sum_units(units: list[dict]) -> dict[str, Any]:
    """Totals of per-unit stats: sums by key, in any order."""
    totals: dict[str, Any] = {k: 0 for k in SUMMED}
    counters = {k: Counter() for k in COUNTED}
    shards = 0
    for st in units:
        for k in SUMMED:
            totals[k] += int(st.get(k) or 0)
        for k in COUNTED:
            counters[k].update(st.get(k) or {})
        shards += len(st.get("shards") or [])
    totals.update({k: dict(sorted(v.items())) for k, v in counters.items()})
    totals["shards"] = shards
    totals["units"] = len(units)
    return totals


def split_key(key: str) -> tuple[str, str]:
    stage, _, reason = key.partition(":")
    return (stage, reason) if reason else (NO_STAGE, key)


def by_stage(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, n in counts.items():
        stage, reason = split_key(key)
        out.setdefault(stage, {})[reason] = out.get(stage, {}).get(reason, 0) + int(n)
    return out


def stage_order(pipeline: dict | None, *counters: dict[str, int]) -> list[str]:
    """Stage names in pipeline order, then stages seen only in reason keys (sorted)."""
    order: list[str] = []
    for item in (pipeline or {}).get("stages") or []:
        name = item if isinstance(item, str) else next(iter(item), None) \
            if isinstance(item, dict) else None
        if name and name not in order:
            order.append(str(name))
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


def _images_with_docs(view: OutputView) -> dict[str, int] | None:
    """Per stage, images that left with their dropped documents (drops column
    ``images_with_doc``), or None when the drop table lacks it."""
    if "images_with_doc" not in view.drops.column_names:
        return None
    out: Counter[str] = Counter()
    for stage, n in zip(view.drops.column("stage").to_pylist(),
                        view.drops.column("images_with_doc").to_pylist()):
        out[str(stage)] += int(n or 0)
    return dict(out)


def _input_step(view: OutputView, totals: dict[str, Any]) -> Step:
    ingested = (view.run_stats or {}).get("documents_ingested", totals["documents_in"])
    return Step("input", "input", totals["documents_in"], totals["images_in"],
                notes={"quarantined": totals["quarantined"],
                       "documents_ingested": ingested})


def build_funnel(view: OutputView) -> Funnel:
    """The funnel and its consistency checks for one output."""
    totals = sum_units(view.units)
    totals["quarantined"] = dict(sorted(Counter(
        str(q.get("reason", "unknown")) for q in view.quarantine).items()))
    totals["manifest_rows"] = view.manifest.num_rows
    doc_drops = by_stage(totals["documents_dropped"])
    img_drops = by_stage(totals["images_dropped"])
    with_docs = _images_with_docs(view)
    # "pending" images were never processed: they left with their document (placed by
    # the drop table's images_with_doc when present), or stay unwritten in a kept one.
    img_drops.get(NO_STAGE, {}).pop("pending", None)
    steps = [_input_step(view, totals)]
    docs, images = totals["documents_in"], totals["images_in"]
    stages = stage_order(view.pipeline, totals["documents_dropped"], totals["images_dropped"])
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
    written = Step("written", "written", totals["documents_written"], totals["images_written"],
                   notes={"bytes": totals["bytes_written"], "shards": totals["shards"]})
    if images != totals["images_written"]:
        written.images_dropped = {"not_written" if with_docs is not None
                                  else "with_dropped_documents": images - written.images}
    steps.append(written)
    errors, warnings = check_counts(view, totals)
    if docs != totals["documents_written"]:
        errors.append(f"funnel: {docs} documents left after the last stage but "
                      f"{totals['documents_written']} written")
    if images < totals["images_written"]:
        errors.append(f"funnel: {images} images left after the last stage but "
                      f"{totals['images_written']} written")
    elif with_docs is not None and images > totals["images_written"]:
        warnings.append(f"funnel: {images - totals['images_written']} images of kept "
                        "documents were not written (still pending: no download stage?)")
    return Funnel(steps, totals, errors, warnings)


def check_counts(view: OutputView, totals: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Every count must add up; returns (errors, warnings)."""
    errors: list[str] = []
    for unit in view.units:
        errors.extend(check_unit(unit))
    errors.extend(check_manifest(view, totals))
    errs, warns = check_run_stats(view, totals)
    return errors + errs, warns

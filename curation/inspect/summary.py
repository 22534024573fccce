"""One JSON-safe summary of an output: funnel, checks and distributions, from one
streaming pass over its metadata files; for a branched output, one per branch; for a
run that read another run's output, also the funnel through both runs."""

from __future__ import annotations

import posixpath
from typing import Any

from curation.inspect.checks import check_drops, check_manifest, check_run_stats, check_shards
from curation.inspect.funnel import build_funnel
from curation.inspect.load import OutputView, load_output
from curation.inspect.scan import scan_drops, scan_manifest, scan_quarantine, scan_units


def _pipeline_info(view: OutputView) -> dict[str, Any]:
    pipe = view.pipeline or {}
    return {"name": pipe.get("name"), "fingerprint": pipe.get("fingerprint"),
            "stages": pipe.get("stages"), "branch": pipe.get("branch"),
            "lineage": view.lineage}


def summarize(view: OutputView) -> dict[str, Any]:
    """The summary of one output (of each branch when it has branches)."""
    if view.branches:
        return summarize_branches(view)
    units = scan_units(view)
    drops = scan_drops(view)
    manifest = scan_manifest(view)
    quarantined = scan_quarantine(view)
    if view.layout == "v1":
        n_shards = len(units.shard_lists)
    else:
        n_shards = len(view.shard_index) if view.shard_index is not None \
            else len(manifest.shards)
    totals = {**units.totals, "quarantined": dict(sorted(quarantined.items())),
              "manifest_rows": manifest.rows, "shards": n_shards,
              "documents_ingested": (view.run_stats or {}).get(
                  "documents_ingested", units.totals["documents_in"])}
    errors = list(units.errors)
    errors += check_manifest(view, units, manifest)
    shard_errors, warnings = check_shards(view, units, manifest)
    errors += shard_errors + check_drops(view, units, drops)
    run_errors, run_warnings = check_run_stats(view, totals)
    funnel = build_funnel(totals, view.pipeline, drops.images_with_doc)
    summary = {
        "output": view.root,
        "pipeline": _pipeline_info(view),
        "read_from": view.sources,
        "totals": totals,
        "steps": funnel.to_dict()["steps"],
        "errors": errors + run_errors + funnel.errors,
        "warnings": warnings + run_warnings + funnel.warnings,
        "distributions": manifest.dists.summary(),
    }
    if view.lineage:
        from curation.inspect.lineage import combined_funnel

        summary["lineage"] = combined_funnel(view, totals, summary["steps"],
                                             funnel.carried_images)
        summary["errors"] += summary["lineage"]["errors"]
        summary["warnings"] += summary["lineage"]["warnings"]
    summary["ok"] = not summary["errors"]
    return summary


def summarize_branches(view: OutputView) -> dict[str, Any]:
    """{"branches": {name: summary}}: each branch is a full output under the run's."""
    branches = {}
    for name in view.branches:
        output = posixpath.join(view.root.rstrip("/"), name)
        try:
            branches[name] = summarize_output(output, view.storage_options)
        except FileNotFoundError as exc:
            branches[name] = {"output": output, "ok": False, "missing": True,
                              "errors": [f"branch {name}: {exc} (not run yet?)"]}
    return {"output": view.root, "pipeline": _pipeline_info(view),
            "branches": branches, "ok": all(b["ok"] for b in branches.values())}


def summarize_output(output: str, storage_options: dict | None = None) -> dict[str, Any]:
    return summarize(load_output(output, storage_options))

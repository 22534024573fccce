"""The funnel of a run that read an earlier run's output (``_pipeline.json`` has
``lineage``), from the first run's input through every run: each earlier run's steps
come from its ``stats.json``, ``_pipeline.json`` and drop tables (never its manifest or
tars), then this run's steps, whose input is the earlier run's written documents.

The runs must add up where they meet: when the earlier output was read whole, its
``documents_written`` equals this run's ``documents_ingested`` and its
``images_written`` equals this run's ``images_in`` less the image records the earlier
run had already dropped (the ``carried`` step). A partial read (some shards only) is
shown with its share and not compared.
"""

from __future__ import annotations

import posixpath
from dataclasses import asdict
from typing import Any

from curation.inspect.funnel import Step, build_funnel
from curation.inspect.load import OutputView, load_output
from curation.inspect.scan import scan_drops
from curation.location import Location

MAX_DEPTH = 8  # runs followed back through lineage


def _run(view: OutputView, steps: list[dict], label: str | None = None) -> dict[str, Any]:
    pipe = view.pipeline or {}
    if label and steps:
        steps = [{**steps[0], "label": label}, *steps[1:]]
    return {"name": pipe.get("name"), "output": view.root,
            "fingerprint": pipe.get("fingerprint"), "steps": steps}


def _norm(uri: str, options: dict) -> str:
    return Location.of(str(uri), options).uri.rstrip("/")


def read_whole(child: OutputView, parent: OutputView) -> tuple[bool, str]:
    """Whether ``child`` read all of ``parent`` (from lineage, else its inputs)."""
    lin = child.lineage or {}
    if isinstance(lin.get("read_whole"), bool):
        return lin["read_whole"], "recorded in lineage"
    inputs = (child.pipeline or {}).get("inputs") or (child.run_stats or {}).get("inputs")
    if not inputs:
        return True, "inputs not recorded; assumed whole"
    root = parent.loc.uri.rstrip("/")
    norm = [_norm(i, child.storage_options) for i in inputs]
    if any(n in (root, f"{root}/shards") for n in norm):
        return True, "the parent folder was the input"
    names = {posixpath.basename(n) for n in norm
             if n.startswith(f"{root}/shards/") and n.endswith(".tar")}
    if not names:
        return True, "inputs not matched to the parent's shards; assumed whole"
    have = ({str(r["shard"]) for r in parent.shard_index} if parent.shard_index is not None
            else set(parent.shard_sizes))
    whole = have <= names
    return whole, f"{len(names & have)} of the parent's {len(have)} shards read"


def _link(child: OutputView, totals: dict, carried: int, parent: OutputView,
          ptotals: dict) -> tuple[list[str], list[str], dict[str, Any]]:
    """Checks where a run meets the run it read."""
    errors: list[str] = []
    warnings: list[str] = []
    lin = child.lineage or {}
    pname = (parent.pipeline or {}).get("name")
    fp = (parent.pipeline or {}).get("fingerprint")
    if lin.get("parent_fingerprint") and fp and lin["parent_fingerprint"] != fp:
        warnings.append(f"lineage: {parent.root} now has pipeline fingerprint {fp}, not "
                        f"{lin['parent_fingerprint']} as when {child.root} read it "
                        "(rewritten since?)")
    whole, why = read_whole(child, parent)
    docs_in = int(totals.get("documents_ingested", totals["documents_in"]))
    images_in = int(totals["images_in"]) - carried
    pdocs, pimages = int(ptotals["documents_written"]), int(ptotals["images_written"])
    where = f"lineage {pname or parent.root} -> {(child.pipeline or {}).get('name')}"
    if whole:
        if docs_in != pdocs:
            errors.append(f"{where}: {parent.root} wrote {pdocs} documents but "
                          f"{child.root} ingested {docs_in}")
        if images_in != pimages:
            errors.append(f"{where}: {parent.root} wrote {pimages} images but "
                          f"{child.root} read {images_in} (images_in {totals['images_in']}"
                          f" less {carried} dropped by the parent)")
    elif docs_in > pdocs:
        errors.append(f"{where}: {child.root} ingested {docs_in} documents, more than "
                      f"the {pdocs} {parent.root} wrote")
    return errors, warnings, {"read_whole": whole, "how": why,
                              "documents_read": docs_in, "images_read": images_in}


def _parent_funnel(parent: OutputView) -> tuple[dict, list[dict], int]:
    """(totals, steps, carried images) of an earlier run, from its stats.json."""
    run = dict(parent.run_stats or {})
    for k in ("documents_in", "documents_written", "images_in", "images_written",
              "bytes_written", "shards"):
        run.setdefault(k, 0)
    for k in ("documents_dropped", "images_dropped", "quarantined"):
        run[k] = dict(run.get(k) or {})
    funnel = build_funnel(run, parent.pipeline, scan_drops(parent, records=False).images_with_doc)
    return run, [asdict(s) if isinstance(s, Step) else s for s in funnel.steps], \
        funnel.carried_images


def _ancestors(child: OutputView, totals: dict, carried: int, depth: int,
               seen: set[str]) -> tuple[list[dict], list[str], list[str], dict]:
    """Earlier runs (first run first), errors, warnings, and the link to the parent."""
    uri = str((child.lineage or {})["parent"])
    if depth >= MAX_DEPTH or uri in seen:
        return [], [], [f"lineage: stopped at {uri} (depth {depth} or a cycle)"], {}
    seen.add(uri)
    try:
        parent = load_output(uri, child.storage_options)
    except FileNotFoundError as exc:
        return [], [], [f"lineage: parent output unreadable ({exc}); funnel of this run "
                        "only"], {}
    if parent.run_stats is None:
        return [], [], [f"lineage: {uri} has no stats.json (not finished?); funnel of "
                        "this run only"], {}
    ptotals, steps, pcarried = _parent_funnel(parent)
    errors, warnings, link = _link(child, totals, carried, parent, ptotals)
    runs: list[dict] = []
    if parent.lineage:
        runs, e, w, _ = _ancestors(parent, ptotals, pcarried, depth + 1, seen)
        errors, warnings = e + errors, w + warnings
        if runs:
            prev = runs[-1]["name"] or "parent"
            steps = [{**steps[0], "label": f"read from {prev}"}, *steps[1:]]
    runs.append(_run(parent, steps))
    return runs, errors, warnings, link


def combined_funnel(view: OutputView, totals: dict, steps: list[dict],
                    carried: int) -> dict[str, Any]:
    """{"parent", "runs": [{"name", "output", "fingerprint", "steps"}...] (first run
    first, this run last), "read_whole", "errors", "warnings"}."""
    lin = view.lineage or {}
    runs, errors, warnings, link = _ancestors(view, totals, carried, 0, set())
    pname = lin.get("parent_name") or (runs[-1]["name"] if runs else None)
    runs.append(_run(view, steps, f"read from {pname or lin.get('parent')}"))
    return {"parent": lin.get("parent"), "parent_name": lin.get("parent_name"),
            "parent_fingerprint": lin.get("parent_fingerprint"), **link,
            "runs": runs, "errors": errors, "warnings": warnings}

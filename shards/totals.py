"""Sum per-unit stats into run totals; partial sums merge in any order."""

from __future__ import annotations

from collections import Counter
from typing import Any

SUMMED = ("documents_in", "documents_written", "images_in", "images_written",
          "bytes_written")
COUNTED = ("documents_dropped", "image_status", "images_dropped", "sources")


def sum_unit_stats(units: list[dict]) -> dict[str, Any]:
    """Totals of unit stats (or of partial totals: the same keys, plus ``units``)."""
    totals: dict[str, Any] = {k: 0 for k in SUMMED}
    counters: dict[str, Counter] = {k: Counter() for k in COUNTED}
    n_units = 0
    for st in units:
        for k in SUMMED:
            totals[k] += st.get(k, 0)
        for k in COUNTED:
            counters[k].update(st.get(k, {}))
        n_units += st.get("units", 1)
    totals.update({k: dict(sorted(v.items())) for k, v in counters.items()})
    totals["units"] = n_units
    return totals


def sum_ingest_markers(markers: list[dict]) -> dict[str, Any]:
    """Documents read and records quarantined, over input-file markers (or partials)."""
    quarantined: Counter = Counter()
    documents = 0
    inputs: list[tuple[int, str]] = []
    for m in markers:
        documents += m.get("documents", 0)
        quarantined.update(m.get("quarantined", {}))
        inputs.extend([(m["index"], m["path"])] if "index" in m else
                      [tuple(x) for x in m.get("inputs", [])])
    return {"documents": documents, "quarantined": dict(sorted(quarantined.items())),
            "inputs": sorted(inputs)}

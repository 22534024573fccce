"""Distributions over the written documents, from manifest columns only (no tar reads):
overall and per source. Metrics whose column is absent, or all null, are skipped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Metric:
    name: str
    column: str
    per: str  # "document" or "image" (list column, flattened)
    integer: bool
    title: str


METRICS = (
    Metric("images_per_document", "num_images", "document", True, "images per document"),
    Metric("sentences_per_document", "num_texts", "document", True,
           "sentences per document"),
    Metric("text_chars", "text_chars", "document", True, "text length (characters)"),
    Metric("bytes_per_sample", "bytes", "document", True, "bytes per sample"),
    Metric("image_width", "image_widths", "image", True, "image width (px)"),
    Metric("image_height", "image_heights", "image", True, "image height (px)"),
    Metric("clip_similarity", "image_sims", "image", False, "CLIP similarity (assigned)"),
    Metric("assignment_strength", "image_margins", "image", False,
           "assignment strength (sim margin)"),
)
MAX_INT_BINS = 40  # integer metrics with a range up to this get one bin per value
FLOAT_BINS = 20


def values_of(table: pa.Table, metric: Metric) -> np.ndarray:
    """The metric's non-null values as float64 (list columns flattened)."""
    if metric.column not in table.column_names:
        return np.empty(0)
    col = table.column(metric.column)
    if metric.per == "image":
        col = pc.list_flatten(col)
    col = pc.drop_null(col)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def bin_edges(values: np.ndarray, integer: bool) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if integer and hi - lo <= MAX_INT_BINS:
        return np.arange(lo, hi + 2) - 0.5  # one bin centred on each integer value
    if lo == hi:
        half = max(abs(lo) * 0.01, 1e-3)
        return np.array([lo - half, hi + half])
    return np.linspace(lo, hi, FLOAT_BINS + 1)


def _r(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(float(x), 4)


def histogram(values: np.ndarray, integer: bool,
              edges: list[float] | None = None) -> dict[str, Any]:
    """Summary numbers plus a histogram (``edges`` has one more entry than ``counts``);
    pass ``edges`` to count on another histogram's bins (per source on overall bins)."""
    if values.size == 0:
        return {"count": 0}
    bins = np.asarray(edges, dtype=np.float64) if edges else bin_edges(values, integer)
    counts, _ = np.histogram(values, bins=bins)
    p50, p90 = np.percentile(values, [50, 90])
    return {"count": int(values.size), "mean": _r(values.mean()), "min": _r(values.min()),
            "p50": _r(p50), "p90": _r(p90), "max": _r(values.max()),
            "edges": [float(e) for e in bins], "counts": [int(c) for c in counts]}


def distributions(table: pa.Table, bins: dict[str, list[float]] | None = None
                  ) -> dict[str, dict[str, Any]]:
    """{metric name: histogram} for the metrics present in ``table``."""
    out = {}
    for metric in METRICS:
        values = values_of(table, metric)
        if values.size:
            out[metric.name] = histogram(values, metric.integer,
                                         (bins or {}).get(metric.name))
    return out


def by_source(table: pa.Table, overall: dict[str, dict[str, Any]] | None = None
              ) -> dict[str, dict[str, dict[str, Any]]]:
    """{source: {metric: histogram}}, sources sorted by name, on the bins of ``overall``
    (so sources compare bin by bin)."""
    if table.num_rows == 0:
        return {}
    bins = {k: h["edges"] for k, h in (overall or {}).items() if "edges" in h}
    sources = sorted(set(table.column("source").to_pylist()), key=str)
    return {str(s): distributions(table.filter(pc.equal(table.column("source"), s)), bins)
            for s in sources}


def metric_titles() -> dict[str, str]:
    return {m.name: m.title for m in METRICS}

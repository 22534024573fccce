"""Distributions over the written documents, from manifest columns only (no tar reads),
overall and per source, accumulated batch by batch on fixed fine bins: memory is a few
thousand counters per metric and source, whatever the number of documents.

Fine bins: integer metrics count each value 0..1023 exactly, then 64 log-spaced bins
per doubling (about 1% wide) up to 2^48; float metrics (similarities, margins) use
0.001-wide bins on [-2, 2]. Count, mean, min and max are exact; percentiles are exact
for integers below 1024 and within one fine bin otherwise. The printed and charted
histogram is re-binned from the fine bins: one bin per integer when the range spans at
most 40 values, else 20 equal bins over [min, max] (per source on the overall bins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.inspect.arrow_io import as_array, codes, dense_valid, numpy_of


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
COLUMNS = sorted({m.column for m in METRICS} | {"source"})
MAX_INT_BINS = 40  # integer metrics with a range up to this get one bin per value
FLOAT_BINS = 20

EXACT = 1024  # integers below this are counted one bin per value
PER_OCTAVE = 64
OCTAVES = 38  # 2^10 .. 2^48
INT_BINS = EXACT + PER_OCTAVE * OCTAVES
FLOAT_LO, FLOAT_HI, FLOAT_STEP = -2.0, 2.0, 0.001
FLOAT_NBINS = int(round((FLOAT_HI - FLOAT_LO) / FLOAT_STEP))


def _int_bins(v: np.ndarray) -> np.ndarray:
    v = np.maximum(v, 0)
    idx = np.minimum(v, EXACT - 1).astype(np.int64)
    big = v >= EXACT
    if big.any():
        octave = (np.log2(v[big]) - 10.0) * PER_OCTAVE
        idx[big] = EXACT + np.minimum(octave.astype(np.int64), PER_OCTAVE * OCTAVES - 1)
    return idx


def _int_centres() -> np.ndarray:
    k = np.arange(PER_OCTAVE * OCTAVES) + 0.5
    return np.concatenate([np.arange(EXACT, dtype=np.float64),
                           np.power(2.0, 10.0 + k / PER_OCTAVE)])


def _float_bins(v: np.ndarray) -> np.ndarray:
    idx = np.floor((v - FLOAT_LO) / FLOAT_STEP).astype(np.int64)
    return np.clip(idx, 0, FLOAT_NBINS - 1)


def _float_centres() -> np.ndarray:
    return FLOAT_LO + (np.arange(FLOAT_NBINS) + 0.5) * FLOAT_STEP


@dataclass
class FineHistogram:
    """One metric's fixed fine bins plus exact count, sum, min and max."""

    integer: bool
    counts: np.ndarray = field(init=False)
    n: int = 0
    total: float = 0.0
    lo: float = float("inf")
    hi: float = float("-inf")

    def __post_init__(self) -> None:
        self.counts = np.zeros(INT_BINS if self.integer else FLOAT_NBINS, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        bins = _int_bins(values) if self.integer else _float_bins(values)
        self.counts += np.bincount(bins, minlength=self.counts.size)
        self.n += int(values.size)
        self.total += float(values.sum())
        self.lo = min(self.lo, float(values.min()))
        self.hi = max(self.hi, float(values.max()))

    def centres(self) -> np.ndarray:
        """A representative value per fine bin, inside the observed [min, max]."""
        c = _int_centres() if self.integer else _float_centres()
        return np.clip(c, self.lo, self.hi)

    def percentile(self, q: float) -> float:
        """numpy's linear-interpolation percentile over the bins' representatives."""
        rank = (self.n - 1) * q / 100.0
        cum = np.cumsum(self.counts)
        centres = self.centres()
        lo_k, hi_k = int(np.floor(rank)), int(np.ceil(rank))
        v_lo = centres[int(np.searchsorted(cum, lo_k, side="right"))]
        v_hi = centres[int(np.searchsorted(cum, hi_k, side="right"))]
        value = float(v_lo + (v_hi - v_lo) * (rank - lo_k))
        # above the exact range an integer metric is known to ~1%: no false decimals
        return float(round(value)) if self.integer and value >= EXACT else value

    def display_edges(self) -> np.ndarray:
        lo, hi = self.lo, self.hi
        if self.integer and hi - lo <= MAX_INT_BINS:
            return np.arange(lo, hi + 2) - 0.5  # one bin centred on each integer value
        if lo == hi:
            half = max(abs(lo) * 0.01, 1e-3)
            return np.array([lo - half, hi + half])
        return np.linspace(lo, hi, FLOAT_BINS + 1)

    def display_counts(self, edges: np.ndarray) -> np.ndarray:
        nz = np.nonzero(self.counts)[0]
        counts, _ = np.histogram(self.centres()[nz], bins=edges, weights=self.counts[nz])
        return counts

    def summary(self, edges: list[float] | None = None) -> dict[str, Any]:
        """Count, mean, min, p50, p90, max and a display histogram (``edges`` has one
        more entry than ``counts``); pass ``edges`` to count on another histogram's
        bins (per source on the overall bins)."""
        if self.n == 0:
            return {"count": 0}
        bins = np.asarray(edges, dtype=np.float64) if edges else self.display_edges()
        return {"count": self.n, "mean": _r(self.total / self.n), "min": _r(self.lo),
                "p50": _r(self.percentile(50)), "p90": _r(self.percentile(90)),
                "max": _r(self.hi), "edges": [float(e) for e in bins],
                "counts": [int(round(c)) for c in self.display_counts(bins)]}


def _r(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(float(x), 4)


def values_of(batch: pa.RecordBatch | pa.Table, metric: Metric
              ) -> tuple[np.ndarray, np.ndarray]:
    """(the metric's non-null values as float64, the row each came from); list columns
    are flattened."""
    if metric.column not in batch.schema.names:
        return np.empty(0), np.empty(0, dtype=np.int64)
    col = as_array(batch.column(metric.column))
    if metric.per == "image":
        rows = numpy_of(pc.list_parent_indices(col)).astype(np.int64)
        col = pc.list_flatten(col)
    else:
        rows = np.arange(len(col), dtype=np.int64)
    values, valid = dense_valid(col)
    return values[valid], rows[valid]


class Distributions:
    """Fine histograms of every metric, overall and per source, fed batch by batch
    (small batches are pooled up to ``POOL_ROWS`` rows before binning)."""

    POOL_ROWS = 16_384

    def __init__(self) -> None:
        self.overall = {m.name: FineHistogram(m.integer) for m in METRICS}
        self.per_source: dict[str, dict[str, FineHistogram]] = {}
        self._pool: list[pa.RecordBatch | pa.Table] = []
        self._pooled = 0

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        self._pool.append(batch.select([c for c in COLUMNS if c in batch.schema.names]))
        self._pooled += batch.num_rows
        if self._pooled >= self.POOL_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pool:
            return
        tables = [pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch) else b
                  for b in self._pool]
        self._pool, self._pooled = [], 0
        self._bin(pa.concat_tables(tables, promote_options="default"))

    def _bin(self, batch: pa.Table) -> None:
        if "source" in batch.schema.names:
            idx, sources = codes(batch.column("source"))
        else:
            idx, sources = np.zeros(batch.num_rows, dtype=np.int64), []
        for m in METRICS:
            values, rows = values_of(batch, m)
            self.overall[m.name].add(values)
            for code, source in enumerate(sources):
                hists = self.per_source.setdefault(
                    str(source), {x.name: FineHistogram(x.integer) for x in METRICS})
                hists[m.name].add(values[idx[rows] == code] if len(sources) > 1
                                  else values)

    def summary(self) -> dict[str, Any]:
        """{"all": {metric: histogram}, "by_source": {source: {metric: histogram}}};
        metrics without data are left out."""
        self._flush()
        overall = {name: h.summary() for name, h in self.overall.items() if h.n}
        by_source = {
            source: {name: h.summary(overall[name]["edges"])
                     for name, h in hists.items() if h.n}
            for source, hists in sorted(self.per_source.items())}
        return {"all": overall, "by_source": by_source}


def histogram(values: np.ndarray, integer: bool,
              edges: list[float] | None = None) -> dict[str, Any]:
    """The summary of one array (a convenience over FineHistogram)."""
    h = FineHistogram(integer)
    h.add(np.asarray(values, dtype=np.float64))
    return h.summary(edges)


def distributions(table: pa.Table | pa.RecordBatch) -> dict[str, Any]:
    """{"all": ..., "by_source": ...} of one table (small outputs, tests)."""
    d = Distributions()
    d.add(table)
    return d.summary()


def metric_titles() -> dict[str, str]:
    return {m.name: m.title for m in METRICS}

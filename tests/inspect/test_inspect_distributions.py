"""Histograms: exact counts and bins on the constructed output and on plain arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.inspect.distributions import Distributions, distributions, histogram


def test_integer_histogram_has_one_bin_per_value():
    h = histogram(np.array([1, 1, 3, 2, 1.0]), integer=True)
    assert h["edges"] == [0.5, 1.5, 2.5, 3.5]
    assert h["counts"] == [3, 1, 1]
    assert (h["count"], h["min"], h["max"], h["p50"], h["mean"]) == (5, 1, 3, 1, 1.6)


def test_wide_and_constant_ranges():
    h = histogram(np.arange(0, 1000, dtype=float), integer=True)
    assert len(h["counts"]) == 20 and sum(h["counts"]) == 1000
    c = histogram(np.array([0.05, 0.05]), integer=False)
    assert c["counts"] == [2] and c["edges"][0] < 0.05 < c["edges"][1]
    assert histogram(np.empty(0), integer=True) == {"count": 0}


def _manifest(out) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((out / "manifest").glob("*"))])


def test_distributions_of_the_constructed_output(constructed_output):
    m = _manifest(constructed_output)
    d = distributions(m)["all"]
    assert d["images_per_document"]["counts"] == [3, 1]  # docs with 1,1,1,2 images
    assert d["sentences_per_document"]["counts"] == [2, 1, 1]  # 1,1,2,3 sentences
    assert d["sentences_per_document"]["edges"] == [0.5, 1.5, 2.5, 3.5]
    widths = sorted(int(w) for w in m.column("image_widths").combine_chunks()
                    .flatten().to_pylist())
    assert widths == [64, 64, 72, 80, 96]
    assert d["image_width"]["count"] == 5 and d["image_width"]["max"] == 96
    assert d["image_width"]["p50"] == 72 and d["image_width"]["mean"] == 75.2
    assert d["image_height"]["min"] == 48
    assert d["clip_similarity"]["count"] == 5
    assert abs(d["clip_similarity"]["mean"] - np.mean([0.31, 0.25, 0.28, 0.33, 0.22])) < 1e-4
    assert abs(d["clip_similarity"]["p50"] - 0.28) <= 0.001  # within one fine bin
    # only the mmc4 images are scored against several sentences: margin 0.05 each
    assert d["assignment_strength"]["count"] == 3
    assert abs(d["assignment_strength"]["mean"] - 0.05) < 1e-4
    texts = sorted(m.column("text_chars").to_pylist())
    assert texts == [12, 18, 33, 54] and d["text_chars"]["mean"] == 29.25
    assert d["bytes_per_sample"]["count"] == 4


def test_per_source_uses_overall_bins(constructed_output):
    dists = distributions(_manifest(constructed_output))
    overall, src = dists["all"], dists["by_source"]
    assert sorted(src) == ["coyo", "mmc4"]
    for name, h in overall.items():
        parts = [src[s][name] for s in src if name in src[s]]
        assert all(p["edges"] == h["edges"] for p in parts), name
        assert [sum(x) for x in zip(*(p["counts"] for p in parts))] == h["counts"], name
    assert "assignment_strength" not in src["coyo"]  # one sentence: no margin
    assert src["coyo"]["image_width"]["counts"][-1] == 1  # the 96 px coyo image


def test_batches_give_the_same_summary_as_one_table():
    """Fed in 3 batches or at once, with nulls and lists: identical numbers."""
    t = pa.table({"source": ["a", "b", None, "a", "b", "a"],
                  "num_images": pa.array([1, 2, None, 4, 5, 1000], pa.int32()),
                  "image_sims": pa.array([[0.1], [0.2, None], [], None, [0.3], [-0.1]],
                                         pa.list_(pa.float32()))})
    whole = distributions(t)
    d = Distributions()
    for b in t.to_batches(max_chunksize=2):
        d.add(b)
    assert d.summary() == whole
    assert whole["all"]["images_per_document"]["count"] == 5
    assert whole["all"]["images_per_document"]["max"] == 1000
    assert whole["all"]["clip_similarity"]["count"] == 4
    assert sorted(whole["by_source"]) == ["None", "a", "b"]
    assert whole["by_source"]["a"]["images_per_document"]["count"] == 3


def test_large_integers_fall_in_one_percent_bins():
    values = np.arange(1, 100_001, dtype=float)
    h = histogram(values, integer=True)
    assert h["count"] == 100_000 and h["min"] == 1 and h["max"] == 100_000
    assert h["mean"] == 50000.5  # exact: a running sum
    assert abs(h["p50"] - 50000.5) / 50000.5 < 0.01
    assert abs(h["p90"] - 90000.1) / 90000.1 < 0.01
    assert sum(h["counts"]) == 100_000 and len(h["counts"]) == 20


def test_missing_columns_are_skipped():
    t = pa.table({"key": ["a"], "source": ["x"], "num_images": pa.array([2], pa.int32()),
                  "num_texts": pa.array([3], pa.int32()), "bytes": [10]})
    assert set(distributions(t)["all"]) == {"images_per_document", "sentences_per_document",
                                            "bytes_per_sample"}

"""`curate stats` on an output with many shards vs the naive way (open every tar and
count its samples and images). Prints both times and the ratio.

    .venv/bin/python bench/inspect_stats.py [--units 1000] [--docs 8]
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.document import Document, ImageRecord, Provenance  # noqa: E402
from curation.inspect.summary import summarize_output  # noqa: E402
from curation.runner.finalize import finalize_output  # noqa: E402
from curation.storage import write_json  # noqa: E402
from shards.writer import ShardLimits, write_unit  # noqa: E402


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (seed % 256, 80, 160)).save(buf, "JPEG")
    return buf.getvalue()


def make_output(root: Path, units: int, docs: int) -> None:
    payload = jpeg(1)
    for u in range(units):
        batch = []
        for i in range(docs):
            im = ImageRecord(url=f"http://127.0.0.1/{u}/{i}.jpg", matched_text_index=0,
                             matched_sim=0.3, status="ok", width=96, height=64,
                             mime="image/jpeg", data=payload)
            batch.append(Document(f"d{u}-{i}", "mmc4", None, ["one sentence.", "two."],
                                  [im], Provenance("bench.jsonl", line=i)))
        batch[-1].drop("too_short", "text_length")
        write_unit(batch, str(root), f"{u:05d}-00000", ShardLimits(max_samples=docs))
    write_json(str(root / "_work" / "ingest" / "00000.done.json"),
               {"index": 0, "path": "bench.jsonl", "documents": units * docs,
                "units": [f"{u:05d}-00000" for u in range(units)], "quarantined": 0})
    finalize_output(str(root))


def naive_count(root: Path) -> tuple[int, int]:
    samples = images = 0
    for shard in sorted((root / "shards").glob("*.tar")):
        with tarfile.open(shard) as tf:
            for m in tf:
                if m.name.endswith(".json"):
                    samples += 1
                elif m.isreg():
                    images += 1
    return samples, images


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1000, help="units (one shard each)")
    ap.add_argument("--docs", type=int, default=8, help="documents per unit")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "out"
        make_output(root, args.units, args.docs)
        t0 = time.perf_counter()
        summary = summarize_output(str(root))
        t_stats = time.perf_counter() - t0
        t0 = time.perf_counter()
        samples, images = naive_count(root)
        t_naive = time.perf_counter() - t0
    assert summary["ok"], summary["errors"]
    assert samples == summary["totals"]["documents_written"]
    assert images == summary["totals"]["images_written"]
    print(f"{args.units} shards, {samples} samples: curate stats {t_stats:.2f}s "
          f"(funnel + checks + distributions); naive tar scan {t_naive:.2f}s (counts only)")
    print(f"ratio naive/stats: {t_naive / t_stats:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`curate stats` against a scan that opens every tar (counting samples and images),
on an output built in-process with shards.local.write_output (or on an existing one
with --output). Prints both times, the ratio, and the wall time and peak RSS of
`curate stats` as a fresh process (interpreter start and imports included).

    .venv/bin/python bench/inspect_stats.py [--units 100] [--docs 200] [--image-kb 8]
    .venv/bin/python bench/inspect_stats.py --output demo_output/run
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.document import Document, ImageRecord, Provenance  # noqa: E402
from curation.inspect.summary import summarize_output  # noqa: E402
from shards.local import ShardLimits, write_output  # noqa: E402


def jpeg(kb: int) -> bytes:
    """A noisy JPEG of about ``kb`` KB (noise does not compress)."""
    side = 64
    while True:
        img = Image.effect_noise((side, side), 64).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        if buf.tell() >= kb * 1024 or side > 4096:
            return buf.getvalue()
        side = int(side * 1.25)


def make_output(root: Path, units: int, docs: int, image_kb: int) -> None:
    payload = jpeg(image_kb)
    batches = {}
    for u in range(units):
        batch = []
        for i in range(docs):
            ims = [ImageRecord(url=f"http://127.0.0.1/{u}/{i}/{k}.jpg", matched_text_index=k,
                               matched_sim=0.2 + 0.01 * (i % 10), status="ok", width=96,
                               height=64, mime="image/jpeg", data=payload,
                               similarities=[0.2, 0.25]) for k in range(2)]
            batch.append(Document(f"d{u}-{i}", "mmc4" if i % 3 else "coyo", None,
                                  ["one sentence.", "two."], ims,
                                  Provenance("bench.jsonl", line=i)))
        batch[-1].drop("too_short", "text_length")
        batches[f"{u:05d}-00000"] = batch
    write_output(batches, str(root), ShardLimits(max_samples=500))
    (root / "_pipeline.json").write_text('{"name": "bench", "stages": ["text_length"]}')


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


def cli_stats(root: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of `curate stats` as a new process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "curation.cli", "stats", str(root)],
                            stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def measure(root: Path) -> int:
    du = sum(p.stat().st_size for p in (root / "shards").glob("*.tar"))
    wall, rss, rc = min(cli_stats(root) for _ in range(3))
    t0 = time.perf_counter()
    summary = summarize_output(str(root))
    t_stats = time.perf_counter() - t0
    t0 = time.perf_counter()
    samples, images = naive_count(root)
    t_naive = time.perf_counter() - t0
    assert rc == 0 and summary["ok"], summary["errors"]
    assert samples == summary["totals"]["documents_written"]
    assert images == summary["totals"]["images_written"]
    print(f"{root}: {summary['totals']['shards']} shards, {samples} samples, {images} "
          f"images, {du / 2**20:.0f} MB of tars")
    print(f"curate stats in-process {t_stats:.3f}s (funnel + checks + distributions); "
          f"tar scan {t_naive:.3f}s (counts only)")
    print(f"curate stats as a process: {wall:.2f}s wall, {rss:.0f} MB peak RSS "
          "(best of 3)")
    print(f"ratio tar scan / stats: {t_naive / t_stats:.1f}x")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", help="measure this existing output instead")
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--docs", type=int, default=200, help="documents per unit")
    ap.add_argument("--image-kb", type=int, default=8, help="size of each image")
    ap.add_argument("--build", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        make_output(Path(args.build), args.units, args.docs, args.image_kb)
        return 0
    if args.output:
        return measure(Path(args.output))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "out"
        # built in a child process: a child forked from a big process reports its
        # parent's pages in its peak RSS
        subprocess.run([sys.executable, __file__, "--build", str(root), "--units",
                        str(args.units), "--docs", str(args.docs), "--image-kb",
                        str(args.image_kb)], check=True)
        # the page cache holds the tars just written: the scan reads memory, not disk
        return measure(root)


if __name__ == "__main__":
    sys.exit(main())

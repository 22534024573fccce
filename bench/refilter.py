"""Re-filtering is cheap: `curate run` with only `image_similarity` over a curated
output (new threshold, stored scores, no download, no model) against plain tar
reading of the same shards, in the same run.

Headline: documents/s of the command a user types (Ray start and stop included)
divided by documents/s of a plain `tarfile` pass over the shards (every member read),
at two corpus sizes (the command's fixed cost, ~6 s of Ray start and stop on 2 cores,
weighs on the small one). An extra line gives the command's time without Ray's
start-up.

    .venv/bin/python bench/refilter.py                 # 60,000 and 300,000 documents
    .venv/bin/python bench/refilter.py --docs 60000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.document import IMAGE_OK, Document, ImageRecord, Provenance  # noqa: E402
from shards.local import write_output  # noqa: E402
from shards.pack import ShardLimits  # noqa: E402

UNIT = 2048


def jpeg_pool(rng: np.random.Generator, n: int = 64) -> list[bytes]:
    pool = []
    for _ in range(n):
        arr = (rng.integers(0, 255, (96, 128, 3)) // 64 * 64).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=75)
        pool.append(buf.getvalue())
    return pool


def build(parent: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    pool = jpeg_pool(rng)
    words = np.array([f"w{i}" for i in range(20_000)])
    units = {}
    for u in range(0, n, UNIT):
        docs = []
        for i in range(u, min(n, u + UNIT)):
            texts = [" ".join(words[rng.integers(0, len(words), 20)]) + "."
                     for _ in range(8)]
            images = []
            for j in range(2):
                sims = [round(float(s), 4) for s in rng.uniform(0.05, 0.35, len(texts))]
                images.append(ImageRecord(f"http://h/{i}/{j}.jpg", status=IMAGE_OK,
                                          data=pool[(2 * i + j) % len(pool)],
                                          mime="image/jpeg", similarities=sims,
                                          matched_text_index=int(np.argmax(sims)),
                                          matched_sim=max(sims), width=128, height=96))
            docs.append(Document(f"{i:016x}", "mmc4", f"http://s/{i}", texts, images,
                                 Provenance("orig.jsonl", i + 1)))
        units[f"00000-{u // UNIT:05d}"] = docs
    write_output(units, str(parent), ShardLimits(max_samples=1000))
    (parent / "_pipeline.json").write_text(json.dumps({"name": "bench-parent",
                                                       "fingerprint": "bench"}))


def plain_tar(parent: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    samples, last = 0, None
    for shard in sorted((parent / "shards").glob("*.tar")):
        with open(shard, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tf:
            for member in tf:
                tf.extractfile(member).read()  # type: ignore[union-attr]
                key = member.name.split(".", 1)[0]
                if key != last:
                    samples, last = samples + 1, key
    return samples, time.perf_counter() - t0


def refilter(parent: Path, work: Path) -> tuple[float, float, dict]:
    (work / "refilter.yaml").write_text(
        "name: refilter\ningest: {docs_per_unit: 2048}\n"
        "stages:\n  - image_similarity: {min_similarity: 0.3}\n"
        "writer: {max_samples: 1000}\n")
    out = work / "child"
    t0 = time.perf_counter()
    done = subprocess.run([str(REPO / ".venv" / "bin" / "curate"), "run",
                           str(work / "refilter.yaml"), "-i", str(parent), "-o", str(out)],
                          capture_output=True, text=True, env=dict(os.environ, RAY_ADDRESS=""))
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    log = next((out / "_logs").glob("*.log")).read_text().splitlines()
    started = next(ln for ln in log if "curate: Ray:" in ln)[:8]
    ended = log[-1][:8]
    h1, m1, s1 = map(int, started.split(":"))
    h2, m2, s2 = map(int, ended.split(":"))
    engine = (h2 * 3600 + m2 * 60 + s2) - (h1 * 3600 + m1 * 60 + s1)
    return wall, float(engine), json.loads((out / "stats.json").read_text())


def measure(tmp: Path, n: int) -> None:
    parent = tmp / f"parent-{n}"
    build(parent, n)
    os.sync()  # the build's writes reach the disk now, not during either measurement
    size = sum(f.stat().st_size for f in (parent / "shards").glob("*.tar"))
    samples, tar_s = plain_tar(parent)
    work = tmp / f"work-{n}"
    work.mkdir()
    wall, engine, totals = refilter(parent, work)
    tar_rate, our_rate = samples / tar_s, n / wall
    print(f"{n:,} documents in shards of 1,000 ({size / 2**20:,.0f} MiB)")
    print(f"  plain tarfile read: {tar_rate:,.0f} documents/s ({tar_s:.1f} s)")
    print(f"  curate run (image_similarity >= 0.3): {our_rate:,.0f} documents/s "
          f"({wall:.1f} s, {totals['documents_written']:,} kept; packing after the pass "
          f"{totals['stage_seconds'].get('pack', 0):.1f} s)")
    print(f"  ratio (curate run / plain tar read): {our_rate / tar_rate:.2f}")
    print(f"  extra: without Ray start-up ~{n / max(engine, 1):,.0f} documents/s "
          f"({engine:.0f} s)", flush=True)
    shutil.rmtree(parent)
    shutil.rmtree(work)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, nargs="+", default=[60_000, 300_000],
                   help="corpus sizes, each measured on its own (default: %(default)s)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-refilter-") as tmp:
        for n in args.docs:
            measure(Path(tmp), n)
    return 0


if __name__ == "__main__":
    sys.exit(main())

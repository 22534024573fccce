"""Benchmark: trainer bridge read rate vs plain `tarfile` iteration over the same shards.

    .venv/bin/python bench/bridge.py             # 4000 samples, 2 images each
    .venv/bin/python bench/bridge.py --n 20000

Shards are written by the project's own writer (shards.local.write_output) from documents with two
real JPEGs (noise, ~128 px, ~10-20 KB). Measured in one run, best of --repeat, one
process (num_workers=0, so it is the per-core rate):
(a) plain tarfile: stream every shard, read every member's bytes;
(b) bridge, decode off: ShardDataset (safe tar checks, grouping, rank split, seeded
    block shuffle) yielding raw samples;
(c) bridge, decode + preprocess on: VilaPretrain (interleaved text, JPEG decode,
    resize to 336 + crop + normalize) over the first --n-decode samples.
Target: (b) >= 0.9 x (a).
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.document import IMAGE_OK, Document, ImageRecord, Provenance  # noqa: E402
from shards.local import write_output  # noqa: E402
from shards.pack import ShardLimits  # noqa: E402
from trainer_bridge import ShardDataset, VilaPretrain  # noqa: E402

UNIT = 1000


def noise_jpeg(rng: np.random.Generator) -> bytes:
    array = rng.integers(0, 255, (128, 160, 3), dtype=np.uint8)
    array = (array // 32 * 32).astype(np.uint8)  # some structure: smaller files
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def build(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    pool = [noise_jpeg(rng) for _ in range(64)]
    units = {}
    for u in range(0, n, UNIT):
        docs = []
        for i in range(u, min(n, u + UNIT)):
            images = []
            for j in range(2):
                im = ImageRecord(url=f"http://h/{i}/{j}", matched_text_index=j, matched_sim=0.3)
                im.status, im.mime = IMAGE_OK, "image/jpeg"
                im.data = pool[(i * 2 + j) % len(pool)]
                images.append(im)
            texts = [f"sentence {k} of document {i} with some words." for k in range(4)]
            docs.append(Document(doc_id=f"d{i}", source="mmc4", url=None, texts=texts,
                                 images=images, provenance=Provenance("bench", line=i)))
        units[f"{u // UNIT:05d}-00000"] = docs
    write_output(units, str(root), ShardLimits(max_samples=250))


def plain_tarfile(root: Path) -> int:
    samples = 0
    for path in sorted((root / "shards").glob("*.tar")):
        last = None
        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tf:
            for member in tf:
                tf.extractfile(member).read()
                key = member.name.split(".", 1)[0]
                if key != last:
                    samples, last = samples + 1, key
    return samples


def bridge(root: Path, transform=None, limit: int | None = None) -> int:
    ds = ShardDataset(str(root), transform=transform, rank=0, world_size=1, seed=0)
    return sum(1 for _ in islice(ds, limit))


def best_rate(fn, repeat: int) -> tuple[float, int]:
    best, count = 0.0, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn()
        best = max(best, count / (time.perf_counter() - t0))
    return best, count


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4000, help="samples (documents) to write")
    ap.add_argument("--n-decode", type=int, default=300, help="samples for decode mode")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "out"
        build(root, args.n)
        size = sum(p.stat().st_size for p in (root / "shards").glob("*.tar")) / 1e6
        print(f"{args.n} samples, {size:.0f} MB in {len(list((root / 'shards').glob('*.tar')))}"
              " shards")
        tar_rate, n_tar = best_rate(lambda: plain_tarfile(root), args.repeat)
        raw_rate, n_raw = best_rate(lambda: bridge(root), args.repeat)
        vila = VilaPretrain(image_mode="crop", tower="clip-336")
        dec_rate, n_dec = best_rate(lambda: bridge(root, vila, args.n_decode), 1)
    assert n_tar == n_raw == args.n, (n_tar, n_raw)
    print(f"plain tarfile              {tar_rate:9.0f} samples/s ({n_tar})")
    print(f"bridge, decode off         {raw_rate:9.0f} samples/s ({n_raw})  "
          f"ratio {raw_rate / tar_rate:.2f} (target >= 0.90)")
    print(f"bridge, decode+preprocess  {dec_rate:9.0f} samples/s ({n_dec}, 2 images each, "
          f"336 px)  ratio {dec_rate / tar_rate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

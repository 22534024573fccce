"""Deterministic test JPEGs for bench/gpu_clip.py, made in worker processes (this
module imports no torch, so spawned workers start fast)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

DEMO = Path(__file__).resolve().parents[1] / "curation" / "demo" / "data"


def make_image(args: tuple[int, int, int, str]) -> tuple[int, int, int]:
    """Image ``i``: a random crop of a demo photo at a random size (sides in [lo, hi],
    aspect 0.5-2) with light grain for a real photo's entropy, JPEG q85-95. The same
    bytes for the same ``i`` on every run and machine (given the same Pillow)."""
    i, lo, hi, out = args
    rng = np.random.default_rng(1_000_003 * (i + 1))
    sources = sorted((DEMO / "images").glob("*.jpg"))
    w = int(rng.integers(lo, hi + 1))
    h = int(np.clip(w / rng.uniform(0.5, 2.0), lo, hi))
    with Image.open(sources[int(rng.integers(len(sources)))]) as src:
        src = src.convert("RGB")
        cw = int(src.width * rng.uniform(0.6, 1.0))
        ch = int(src.height * rng.uniform(0.6, 1.0))
        x0, y0 = int(rng.integers(src.width - cw + 1)), int(rng.integers(src.height - ch + 1))
        img = src.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 3.0, (h, w, 1)).astype(np.float32)
    arr = np.clip(np.asarray(img, np.float32) + grain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=int(rng.integers(85, 96)))
    Path(out, f"{i:05d}.jpg").write_bytes(buf.getvalue())
    return w, h, len(buf.getvalue())

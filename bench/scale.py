"""Corpus-scale benchmark: `curate run` with dedup -> image_frequency -> clip_topk (no
download) over synthetic MMC4-style documents at several sizes.

Prints wall time, documents/s, the driver's peak RSS, the peak RSS of the whole
process tree (driver + Ray), and the driver RSS slope per million documents between
the smallest and the largest size. Documents have ~300 words in ~15 sentences, 3
image URLs (1% carry a shared "logo" URL, so image_frequency has work), a metadata
score for the top-k cut, and 5% are near-duplicates of another document.

    .venv/bin/python bench/scale.py --sizes 100000 400000 1600000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PIPELINE = """name: scale
ingest: {docs_per_unit: 2048}
stages:
  - dedup: {}
  - image_frequency: {max_documents: 10, keys: [url]}
  - clip_topk: {fraction: 0.5, score: quality}
writer: {max_samples: 1000}
"""


def write_corpus(folder: Path, n_docs: int, n_files: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(30_000)])
    per_file = -(-n_docs // n_files)
    doc = 0
    words = vocab[:300].copy()
    for f in range(n_files):
        lines = []
        for _ in range(min(per_file, n_docs - doc)):
            if doc % 20 == 19:  # a near-duplicate of the previous document
                words[rng.integers(0, len(words), 6)] = "edited"
            else:
                words = vocab[rng.zipf(1.3, 300) % len(vocab)]
            sentences = [" ".join(words[i:i + 20]) + "." for i in range(0, 300, 20)]
            images = [{"raw_url": f"http://img{doc % 97}.example/{doc}/{j}.jpg",
                       "matched_text_index": j} for j in range(3)]
            if doc % 100 == 0:
                images[0]["raw_url"] = "http://cdn.example/logo.png"
            lines.append(json.dumps({"url": f"http://site{doc % 1000}.example/{doc}",
                                     "text_list": sentences, "image_info": images,
                                     "quality": round(float(rng.random()), 3)}))
            doc += 1
        (folder / f"part-{f:05d}.jsonl").write_text("\n".join(lines) + "\n")


def _tree_rss(pid: int) -> tuple[int, int]:
    """(RSS of pid, RSS of pid and all its descendants) in bytes."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(entry))
            rss[int(entry)] = int(parts[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return rss.get(pid, 0), total


def run_once(n_docs: int, n_files: int, work: Path) -> dict:
    corpus = work / f"in-{n_docs}"
    corpus.mkdir()
    t0 = time.perf_counter()
    write_corpus(corpus, n_docs, n_files)
    gen_s = time.perf_counter() - t0
    (work / "p.yaml").write_text(PIPELINE)
    out = work / f"out-{n_docs}"
    cmd = [str(REPO / ".venv" / "bin" / "curate"), "run", str(work / "p.yaml"), "-i",
           str(corpus), "-o", str(out)]
    peak = {"driver": 0, "tree": 0}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, RAY_ADDRESS=""))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    while proc.poll() is None:
        driver, tree = _tree_rss(proc.pid)
        peak["driver"] = max(peak["driver"], driver)
        peak["tree"] = max(peak["tree"], tree)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    reader.join(timeout=5)
    if proc.returncode != 0:
        raise SystemExit("curate run failed:\n" + "".join(lines[-30:]))
    totals = json.loads((out / "stats.json").read_text())
    return {"timeline": timeline(out), "documents": n_docs, "files": n_files,
            "generate_s": round(gen_s, 1), "wall_s": round(wall, 1),
            "docs_per_s": round(n_docs / wall),
            "driver_peak_mb": round(peak["driver"] / 2**20),
            "tree_peak_mb": round(peak["tree"] / 2**20),
            "written": totals["documents_written"], "shards": totals["shards"],
            "dropped": totals["documents_dropped"], "lines_printed": len(lines)}


def timeline(out: Path) -> str:
    """Seconds per phase (Ray start, each pass, each fit, packing), from the run's own
    log stamps (whole seconds)."""
    log = next((out / "_logs").glob("*.log")).read_text().splitlines()
    stamps = []
    for ln in log:
        if ln[:2].isdigit() and " unit " not in ln:
            h, m, s = map(int, ln[:8].split(":"))
            stamps.append((h * 3600 + m * 60 + s, ln[9:]))
    parts, prev = [], stamps[0][0] if stamps else 0
    for at, text in stamps[1:]:
        if text.startswith("curate: Ray:"):
            name = "ray start"
        elif text.startswith("pass ") and ": started" not in text:
            name = text.split(" (")[0]
        elif ": fitted on " in text:
            name = "fit " + text.split(":")[0]
        elif text.startswith("curate: done"):
            name = "pack+finish"
        else:
            continue
        parts.append(f"{name} {at - prev}")
        prev = at
    return ", ".join(parts)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000, 1_600_000])
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="curate-scale-") as tmp:
        for n in args.sizes:
            work = Path(tmp) / str(n)
            work.mkdir()
            row = run_once(n, args.files, work)
            rows.append(row)
            print(json.dumps(row), flush=True)
            subprocess.run(["rm", "-rf", str(work)], check=False)
    small, large = rows[0], rows[-1]
    if len(rows) > 1:
        slope = (large["driver_peak_mb"] - small["driver_peak_mb"]) / \
            ((large["documents"] - small["documents"]) / 1e6)
        print(f"driver RSS slope: {slope:.0f} MB per 1M documents "
              f"({small['driver_peak_mb']} MB at {small['documents']:,} -> "
              f"{large['driver_peak_mb']} MB at {large['documents']:,})")
    print(f"largest: {large['docs_per_s']:,} documents/s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The GPU check of issue 15, run by ``bench/gpu_clip.sh`` (read that first).

For each model (ViT-B-32, ViT-L-14; random weights, bf16, one GPU):
  (a) bare model: ``encode_image`` on preprocessed tensors already on the GPU;
  (b) bare loop, same decode: the stage's decode (``prepare.decode_uint8``) on the same
      number of threads, one batch prefetched, then the model, caption encode and
      cosine, one batch at a time (the loop a user would write);
  (c) the ``clip_score`` stage through ``curate run``.
Stage rates divided by (a) and (b) are the ratios; target for ViT-L-14: stage / (a)
>= 0.9. One JPEG decode measurement on the GPU (``torchvision.io.decode_jpeg``) is
reported alongside; the stage does not use it.

How (c) gets images that already have bytes, with the project's own code only: the
images are served from 127.0.0.1 and the pipeline is ``download -> image_frequency ->
clip_score``. ``image_frequency`` is a global stage (as in ``pipelines/mmc4.yaml``), so
the runner finishes download + hashing for every unit and stages them before the last
segment starts: that segment is ``clip_score`` alone (plus the shard writer) over
staged units whose images have bytes. Its rate is read from the per-unit stats files'
modification times (a unit's stats are written when its shards are): images in units
2..N over the time from the first unit's completion to the last (steady state; the
actor's start and model load are reported separately, as the time from the end of the
download segment to the first unit).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: I001
import torch

from curation.scoring.encode import image_features, text_features
from curation.scoring.model import load_clip
from curation.scoring.prepare import InputSpec, channel_stats, decode_uint8

DEMO = REPO / "curation" / "demo" / "data"


def fail(msg: str) -> None:
    print(f"gpu_clip: FAIL: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- images (made in worker processes that import no torch: bench/gpu_images.py) --
def make_images(folder: Path, n: int, lo: int, hi: int, procs: int) -> dict:
    from gpu_images import make_image

    folder.mkdir(parents=True, exist_ok=True)
    with mp.get_context("spawn").Pool(procs) as pool:
        sizes = pool.map(make_image, [(i, lo, hi, str(folder)) for i in range(n)],
                         chunksize=16)
    pixels = sum(w * h for w, h, _ in sizes)
    return {"images": n, "min_side": lo, "max_side": hi,
            "mean_pixels": pixels / n, "mean_bytes": sum(b for *_, b in sizes) / n,
            "bits_per_pixel": 8 * sum(b for *_, b in sizes) / pixels}


def captions(n: int) -> list[str]:
    base = [json.loads(line)["caption"]
            for line in (DEMO / "captions.jsonl").read_text().splitlines()]
    return [f"{base[i % len(base)]} (photo {i})" for i in range(n)]


# -- (a) bare model, (b) bare loop ------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_model(clip, n: int, batch: int, texts: list[str]) -> dict:
    """encode_image on preprocessed tensors already on the device (and, for
    reference, the same plus encode_text of each batch's captions)."""
    spec = InputSpec.from_transform(clip.preprocess)
    gen = torch.Generator(device=clip.device).manual_seed(0)
    x = torch.randn((batch, 3, spec.height, spec.width), generator=gen,
                    device=clip.device).to(clip.dtype)
    tokens = clip.tokenizer(texts[:batch]).to(clip.device)
    steps = max(1, n // batch)
    out = {}
    with torch.inference_mode():
        for name, with_text in (("images", False), ("images+texts", True)):
            for _ in range(3):
                clip.model.encode_image(x)
            sync(clip.device)
            t0 = time.perf_counter()
            for _ in range(steps):
                clip.model.encode_image(x)
                if with_text:
                    clip.model.encode_text(tokens)
            sync(clip.device)
            out[name] = steps * batch / (time.perf_counter() - t0)
    return out


def bare_loop(clip, datas: list[bytes], texts: list[str], batch: int, threads: int) -> float:
    """The stage's decode on ``threads`` threads, next batch prefetched, then the
    model one batch at a time."""
    spec = InputSpec.from_transform(clip.preprocess)
    stats = channel_stats(spec, clip.device)
    cuda = clip.device.type == "cuda"

    def submit(pool, s):
        return [pool.submit(decode_uint8, d, spec) for d in datas[s:s + batch]]

    def run(items: int) -> float:
        starts = list(range(0, items, batch))
        with ThreadPoolExecutor(threads) as pool, torch.inference_mode():
            sync(clip.device)
            t0 = time.perf_counter()
            pending = submit(pool, starts[0])
            for k, s in enumerate(starts):
                futures = pending
                if k + 1 < len(starts):
                    pending = submit(pool, starts[k + 1])
                pix = torch.from_numpy(np.stack([f.result() for f in futures]))
                pix = pix.pin_memory().to(clip.device, non_blocking=True) if cuda else pix
                im = image_features(clip, pix, stats)
                tok = clip.tokenizer(texts[s:s + batch]).to(clip.device)
                tx = text_features(clip, tok, trimmed=False)
                (im * tx).sum(-1).cpu()
            sync(clip.device)
            return items / (time.perf_counter() - t0)

    run(min(len(datas), 2 * batch))  # warm-up
    return run(len(datas))


# -- (c) curate run ---------------------------------------------------------------
def pipeline_yaml(model: str, args, precision: str) -> str:
    gpus = 0 if args.smoke else 1
    return json.dumps({
        "name": f"gpu-clip-{model}",
        "ingest": {"format": "coyo", "docs_per_unit": args.unit_size},
        "stages": [
            {"download": {"allow_hosts": ["127.0.0.1"], "timeout_s": 60,
                          "per_host_rps": 0, "per_host_concurrency": 64,
                          "max_in_flight": 128, "max_retries": 0}},
            {"image_frequency": {}},
            {"clip_score": {"model": model, "pretrained": None, "num_gpus": gpus,
                            "num_cpus": args.actor_cpus, "decode_threads": args.threads,
                            "batch_size": args.batch_size, "precision": precision,
                            "device": "cpu" if args.smoke else "cuda"}},
        ],
        "writer": {"max_samples": 2000},
    }, indent=1)  # JSON is YAML


def curate_run(model: str, args, work: Path, n: int, precision: str) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.http_server import StaticServer

    run_dir = work / f"run-{model}"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "in").mkdir(parents=True)
    cfg = run_dir / "pipeline.yaml"
    cfg.write_text(pipeline_yaml(model, args, precision))
    with StaticServer(work / "images") as server:  # 127.0.0.1 only
        rows = [{"id": i, "url": f"{server.base_url}/{i:05d}.jpg", "text": t}
                for i, t in enumerate(captions(n))]
        pq.write_table(pa.Table.from_pylist(rows), run_dir / "in" / "pairs.parquet")
        cmd = [sys.executable, "-m", "curation.cli", "run", str(cfg),
               "--input", str(run_dir / "in"), "--output", str(run_dir / "out"), "--json"]
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                              timeout=args.run_timeout)
        wall = time.time() - t0
    (run_dir / "curate.log").write_text(proc.stderr + proc.stdout)
    if proc.returncode != 0:
        fail(f"curate run ({model}) exited {proc.returncode}; last lines:\n"
             + "\n".join((proc.stderr + proc.stdout).splitlines()[-25:]))
    return unit_rates(run_dir / "out", wall, t0)


def unit_rates(out: Path, wall: float, t0: float) -> dict:
    """Steady-state images/s of the last segment from per-unit stats mtimes."""
    units = []
    for p in (out / "stats").glob("*.json"):
        if p.name == "stats.json":
            continue
        rec = json.loads(p.read_text())
        units.append((p.stat().st_mtime, int(rec.get("images_written", 0))))
    if len(units) < 3:
        fail(f"{out}: only {len(units)} unit stats files; cannot time the clip segment")
    units.sort()
    images = sum(n for _, n in units)
    steady = sum(n for _, n in units[1:]) / max(units[-1][0] - units[0][0], 1e-6)
    return {"images_written": images, "units": len(units), "curate_wall_s": wall,
            "stage_steady_images_per_s": steady,
            "first_unit_done_after_s": units[0][0] - t0,
            "last_unit_done_after_s": units[-1][0] - t0}


# -- GPU JPEG decode (measured only) ---------------------------------------------
def gpu_decode(datas: list[bytes], batch: int, size: int) -> dict:
    import torch.nn.functional as F
    from torchvision.io import decode_jpeg

    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    out = {}
    for name, resize in (("decode", False), ("decode+resize+crop", True)):
        def one_pass() -> None:
            for s in range(0, len(tensors), batch):
                imgs = decode_jpeg(tensors[s:s + batch], device="cuda")
                if resize:
                    for im in imgs:
                        _, h, w = im.shape
                        scale = size / min(h, w)
                        x = F.interpolate(im[None].float(), size=(max(size, round(h * scale)),
                                          max(size, round(w * scale))), mode="bicubic",
                                          antialias=True)
                        t, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
                        x[:, :, t:t + size, left:left + size].contiguous()
        one_pass()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        one_pass()
        torch.cuda.synchronize()
        out[name] = len(tensors) / (time.perf_counter() - t0)
    return out


# -- main -------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description="GPU check of clip_score (issue 15)")
    p.add_argument("--smoke", action="store_true", help="tiny model on CPU, few images")
    p.add_argument("--n", type=int, default=8000)
    p.add_argument("--models", default="ViT-B-32,ViT-L-14")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--unit-size", type=int, default=1024,
                   help="documents per unit (pipelines/coyo.yaml uses 1024)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 2),
                   help="decode threads (stage and bare loop)")
    p.add_argument("--actor-cpus", type=float, default=None,
                   help="num_cpus of the clip actor (default: half the CPUs)")
    p.add_argument("--work", default="/tmp/gpu_clip_work")
    p.add_argument("--out", default=os.environ.get("OUT") or "/tmp/gpu_clip_out")
    p.add_argument("--run-timeout", type=int, default=240)
    p.add_argument("--skip-gpu-decode", action="store_true")
    args = p.parse_args()
    cpus = os.cpu_count() or 2
    if args.smoke:
        args.n, args.models, args.batch_size = min(args.n, 40), "tiny-test", 8
        args.unit_size, args.threads = min(args.unit_size, 8), min(args.threads, 2)
        lo, hi, precision, device = 256, 400, "fp32", "cpu"
    else:
        lo, hi, precision, device = 256, 1600, "bf16", "cuda"
        if not torch.cuda.is_available():
            fail("torch sees no CUDA device (torch %s, CUDA build %s); on a CPU machine "
                 "use --smoke" % (torch.__version__, torch.version.cuda))
    if args.actor_cpus is None:
        args.actor_cpus = 1.0 if args.smoke else float(max(1, cpus // 2))
    torch.set_num_threads(max(1, min(4, cpus)))
    t_start = time.time()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "cpus": cpus, "device": torch.cuda.get_device_name() if device == "cuda"
           else "CPU", "threads": args.threads, "batch_size": args.batch_size,
           "unit_size": args.unit_size, "precision": precision, "smoke": args.smoke}
    log(f"gpu_clip: {env}")
    folder = work / f"images-{args.n}-{lo}-{hi}"
    if not (folder / f"{args.n - 1:05d}.jpg").exists():
        t0 = time.perf_counter()
        env["image_set"] = make_images(folder, args.n, lo, hi, max(1, cpus))
        log(f"made {args.n} JPEGs in {time.perf_counter() - t0:.1f}s: {env['image_set']}")
    link = work / "images"
    if link.is_symlink() or link.exists():
        link.unlink() if link.is_symlink() else shutil.rmtree(link)
    link.symlink_to(folder, target_is_directory=True)
    datas = [(folder / f"{i:05d}.jpg").read_bytes() for i in range(args.n)]
    texts = captions(args.n)
    results: dict = {"env": env, "models": {}}
    for model in args.models.split(","):
        log(f"{model}: bare model, bare loop")
        clip = load_clip(model, None, device=device, precision=precision)
        row = {"bare_model": bare_model(clip, args.n, args.batch_size, texts),
               "bare_loop_same_decode": bare_loop(clip, datas, texts, args.batch_size,
                                                  args.threads)}
        del clip
        if device == "cuda":
            torch.cuda.empty_cache()
        log(f"{model}: curate run (download -> image_frequency -> clip_score)")
        row["curate"] = curate_run(model, args, work, args.n, precision)
        stage = row["curate"]["stage_steady_images_per_s"]
        row["ratio_stage_to_bare_model"] = stage / row["bare_model"]["images"]
        row["ratio_stage_to_bare_loop"] = stage / row["bare_loop_same_decode"]
        results["models"][model] = row
        log(f"{model}: bare model {row['bare_model']['images']:.0f} img/s (with texts "
            f"{row['bare_model']['images+texts']:.0f}), bare loop same decode "
            f"{row['bare_loop_same_decode']:.0f} img/s, stage via curate run {stage:.0f} "
            f"img/s -> stage/bare model {row['ratio_stage_to_bare_model']:.3f}, "
            f"stage/bare loop {row['ratio_stage_to_bare_loop']:.3f}")
    if device == "cuda" and not args.skip_gpu_decode:
        try:
            results["gpu_jpeg_decode_images_per_s"] = gpu_decode(datas[:2048],
                                                                args.batch_size, 224)
        except Exception as exc:  # noqa: BLE001 - a measurement, not the check
            results["gpu_jpeg_decode_images_per_s"] = f"failed: {exc!r}"
        log(f"GPU JPEG decode (torchvision.io.decode_jpeg, device=cuda): "
            f"{results['gpu_jpeg_decode_images_per_s']}")
    results["total_s"] = time.time() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("gpu_clip_smoke.json" if args.smoke else "gpu_clip.json")
    path.write_text(json.dumps(results, indent=1))
    print_table(results)
    log(f"wrote {path} ({results['total_s']:.0f}s in all)")
    return 0


def print_table(results: dict) -> None:
    print(f"\n{'model':10s} {'bare model':>11s} {'bare loop':>10s} {'stage':>8s} "
          f"{'stage/model':>12s} {'stage/loop':>11s}   (images/s)")
    for model, row in results["models"].items():
        print(f"{model:10s} {row['bare_model']['images']:11.0f} "
              f"{row['bare_loop_same_decode']:10.0f} "
              f"{row['curate']['stage_steady_images_per_s']:8.0f} "
              f"{row['ratio_stage_to_bare_model']:12.3f} "
              f"{row['ratio_stage_to_bare_loop']:11.3f}")
    target = results["models"].get("ViT-L-14")
    if target:
        ok = target["ratio_stage_to_bare_model"] >= 0.9
        print(f"target ViT-L-14 stage >= 0.9 x bare model: "
              f"{'MET' if ok else 'NOT MET'} ({target['ratio_stage_to_bare_model']:.3f})")


if __name__ == "__main__":
    raise SystemExit(main())

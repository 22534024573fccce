"""Benchmark: the user's command, `curate run` (download only), against img2dataset on
the same loopback URL list, same machine, same resize, in one run.

    .venv/bin/python bench/download.py                 # 12000 and 48000 URLs, both lines
    .venv/bin/python bench/download.py --n 3000 --lines plain

Two lines, each img2dataset then ours:
- plain: every URL answers;
- stall: 2% of the URLs (every 50th) stall 30 s before answering; both sides time
  out after 10 s and do not retry.

Input: a LAION-style Parquet (``url``, ``caption``) of URLs spread over ``--hosts``
loopback host names (127.0.0.1, 127.0.0.2, ...: all of 127.0.0.0/8 is loopback on
Linux), as a web crawl's URLs are spread over many hosts; ``--hosts 1`` puts them all
on one. Images: a pool of real-looking JPEGs (random crops of the bundled demo
photos, 320-1600 px on the long side, light grain, quality 80-95) served from memory
by an aiohttp server in its own process; URL i serves pool image i % pool.

Ours: ``curate run`` in a subprocess on a fresh local Ray with every CPU:
ingest (``--docs-per-unit``) -> download (shortest side 256, shrink only, area filter,
JPEG quality 95; per-host limits opened, since img2dataset has none; otherwise the
stage's defaults) -> WebDataset shards. img2dataset 1.47: ``processes_count`` = CPUs,
``thread_count`` = ``--threads``, resize_mode keep_ratio (shortest side 256),
resize_only_if_bigger, its default INTER_AREA for shrinking, quality 95,
output_format webdataset.
It pins webdataset<0.3 and pandas<3, so it lives in its own venv
(~/.cache/vlm-curation/img2dataset-venv, built by `make bench`; or
--img2dataset-python / $IMG2DATASET_PYTHON).

images/s = successful images / the command's whole wall time (start-up included).
CPU ms/image = user + system CPU of every process of the command's tree (sampled every
0.2 s) per successful image: steadier than wall time on a shared machine. Peak memory
= the largest sum of PSS (proportional set size: shared pages split between the
processes sharing them) over the tree; RSS summed the same way is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
IMAGES = REPO / "curation" / "demo" / "data" / "images"
SIZE = 256
STALL_EVERY = 50  # 2% of the URLs
STALL_S = 30
TIMEOUT_S = 10
PEER_VENV = Path.home() / ".cache" / "vlm-curation" / "img2dataset-venv"


def make_pool(out: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` distinct JPEGs of mixed sizes made from the bundled demo photos."""
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    sources = sorted(IMAGES.glob("*.jpg"))
    paths = []
    for i in range(n):
        with Image.open(rng.choice(sources)) as src:
            img = src.convert("RGB")
        w, h = img.size
        cw, ch = rng.randint(w * 2 // 3, w), rng.randint(h * 2 // 3, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = img.crop((x, y, x + cw, y + ch))
        longest = rng.choice([320, 480, 640, 800, 1024, 1280, 1600])
        scale = longest / max(cw, ch)
        img = img.resize((max(1, round(cw * scale)), max(1, round(ch * scale))),
                         Image.Resampling.BICUBIC).filter(ImageFilter.DETAIL)
        grain = Image.effect_noise(img.size, rng.uniform(4, 12)).convert("RGB")
        img = Image.blend(img, grain, 0.06)
        path = out / f"{i:05d}.jpg"
        img.save(path, "JPEG", quality=rng.randint(80, 95))
        paths.append(path)
    return paths


def serve(pool_dir: str, hosts: int, port_file: str) -> None:
    """Child process: one aiohttp app on 127.0.0.1..127.0.0.<hosts>, one port."""
    import asyncio

    from aiohttp import web

    blobs = [p.read_bytes() for p in sorted(Path(pool_dir).glob("*.jpg"))]

    async def image(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        return web.Response(body=blobs[i % len(blobs)], content_type="image/jpeg")

    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(STALL_S)
        return await image(request)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/img/{i}.jpg", image)
        app.router.add_get("/stall/{i}.jpg", stall)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        first = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await first.start()
        port = first._server.sockets[0].getsockname()[1]
        for k in range(2, hosts + 1):
            await web.TCPSite(runner, f"127.0.0.{k}", port, backlog=2048).start()
        Path(port_file).write_text(str(port))
        while True:
            await asyncio.sleep(3600)

    asyncio.run(main())


def write_urls(path: Path, port: int, n: int, hosts: int, stall: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    urls = []
    for i in range(n):
        kind = "stall" if stall and i % STALL_EVERY == STALL_EVERY // 2 else "img"
        urls.append(f"http://127.0.0.{1 + i % hosts}:{port}/{kind}/{i}.jpg")
    pq.write_table(pa.table({"url": urls, "caption": [f"image {i}" for i in range(n)]}),
                   path)


def run_img2dataset(urls: str, out: str, processes: int, threads: int) -> None:
    from img2dataset import download

    download(url_list=urls, input_format="parquet", url_col="url", caption_col="caption",
             output_folder=out, output_format="webdataset", image_size=SIZE,
             resize_mode="keep_ratio", resize_only_if_bigger=True, encode_quality=95,
             processes_count=processes, thread_count=threads, timeout=TIMEOUT_S,
             retries=0, number_sample_per_shard=1000, distributor="multiprocessing")


def our_pipeline(path: Path, a: argparse.Namespace) -> None:
    """The user's pipeline: download only. Per-host limits opened (img2dataset has
    none), the same timeout and no retries, img2dataset's resize (shortest side 256,
    area filter = OpenCV INTER_AREA, its default for shrinking, quality 95)."""
    import yaml

    download = {
        "allow_hosts": ["127.0.0.0/8"], "per_host_rps": 0,
        "per_host_concurrency": 100_000, "max_in_flight": a.in_flight,
        "resize_mode": "shortest", "resize_size": SIZE, "resize_filter": "area",
        "encode_quality": 95,
        "timeout_s": TIMEOUT_S, "connect_timeout_s": TIMEOUT_S, "max_retries": 0}
    if a.task_cpus is not None:
        download["task_num_cpus"] = a.task_cpus
    path.write_text(yaml.safe_dump({
        "name": "bench-download",
        "ingest": {"format": "laion", "docs_per_unit": a.docs_per_unit},
        "stages": [{"download": download}], "writer": {"max_samples": 1000}}))


def _tree(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier and p not in tree]
        tree.update(kids)
        frontier = kids
    return tree


def _memory_kb(pids: set[int]) -> tuple[int, int]:
    """(sum of PSS, sum of RSS) in kB."""
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss, rss


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


SAMPLE_S = 1.0  # the sampler walks /proc; every 0.2 s it took a visible share of 2 cores


def timed(cmd: list[str], env: dict | None = None) -> dict[str, float]:
    """Run ``cmd``; wall s, peak PSS and RSS MB and CPU s of its process tree (CPU
    from samples: the last second of a process that exits is missed)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    peak = [0, 0]
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pids = _tree(proc.pid)
            pss, rss = _memory_kb(pids)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            for pid in pids:
                try:
                    cpu[pid] = _cpu_s(pid)
                except (OSError, ValueError, IndexError):
                    pass
            stop.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{cmd[:3]} failed:\n{err.decode()[-3000:]}")
    return {"wall": wall, "pss": peak[0] / 1024, "rss": peak[1] / 1024,
            "cpu": sum(cpu.values())}


def run_line(tmp: Path, name: str, urls: Path, a: argparse.Namespace) -> dict:
    cpus = os.cpu_count() or 1
    i2d_out, our_out = tmp / f"i2d-{name}", tmp / f"ours-{name}"
    peer = timed([a.img2dataset_python, __file__, "--role", "img2dataset", str(urls),
                  str(i2d_out), str(cpus), str(a.threads)])
    peer["ok"] = sum(json.loads(p.read_text())["successes"]
                     for p in i2d_out.glob("*_stats.json"))
    pipeline = tmp / "pipeline.yaml"
    our_pipeline(pipeline, a)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    ours = timed([sys.executable, "-m", "curation.cli", "run", str(pipeline), "-i",
                  str(urls), "-o", str(our_out)], env=env)
    ours["ok"] = json.loads((our_out / "stats.json").read_text())["image_status"].get("ok", 0)
    ours["timeline"] = _timeline(our_out)
    return {"img2dataset": peer, "curate run": ours}


def _timeline(out: Path) -> str:
    """Where our wall time went, from the run's own log (seconds since its start)."""
    log = next((out / "_logs").glob("*.log")).read_text().splitlines()
    stamps = [(ln[:8], ln[9:]) for ln in log if ln[:2].isdigit() and " unit " not in ln]

    def at(text: str) -> int | None:  # the last line that starts with text
        for stamp, rest in reversed(stamps):
            if rest.startswith(text):
                h, m, s = map(int, stamp.split(":"))
                return h * 3600 + m * 60 + s
        return None

    start, ray_up = at("curate: bench"), at("curate: Ray:")
    pass_end, done = at("pass 0 ("), at("curate: done")
    if None in (start, ray_up, pass_end, done):
        return ""
    return (f"Ray start {ray_up - start} s, download pass {pass_end - ray_up} s, "  # type: ignore[operator]
            f"packing + totals {done - pass_end} s (log stamps, whole seconds)")  # type: ignore[operator]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[12000, 48000],
                    help="numbers of URLs, each measured on its own (default: %(default)s)")
    ap.add_argument("--pool", type=int, default=300, help="distinct JPEGs served")
    ap.add_argument("--hosts", type=int, default=16, help="loopback host names")
    ap.add_argument("--lines", default="plain,stall")
    ap.add_argument("--threads", type=int, default=64, help="img2dataset thread_count")
    ap.add_argument("--docs-per-unit", type=int, default=2000, help="ours: unit size")
    ap.add_argument("--in-flight", type=int, default=512, help="ours: per actor")
    ap.add_argument("--task-cpus", type=float, default=None,
                    help="ours: download task_num_cpus (default: the stage's)")
    ap.add_argument("--img2dataset-python", default=os.environ.get(
        "IMG2DATASET_PYTHON", str(PEER_VENV / "bin" / "python")
        if PEER_VENV.exists() else sys.executable),
        help="interpreter with img2dataset installed (default: %(default)s)")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "serve":
        serve(a.args[0], int(a.args[1]), a.args[2])
        return 0
    if a.role == "img2dataset":
        run_img2dataset(a.args[0], a.args[1], int(a.args[2]), int(a.args[3]))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        return _bench(Path(tmp), a)


def _bench(tmp: Path, a: argparse.Namespace) -> int:
    pool_dir = tmp / "pool"
    pool_dir.mkdir()
    paths = make_pool(pool_dir, a.pool)
    kb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
    print(f"URLs over {a.hosts} loopback host(s), {len(paths)} distinct JPEGs "
          f"(mean {kb:.0f} KB), resize shortest side {SIZE}, {os.cpu_count()} CPUs",
          flush=True)
    port_file = tmp / "port"
    server = subprocess.Popen([sys.executable, __file__, "--role", "serve", str(pool_dir),
                               str(a.hosts), str(port_file)])
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        port = int(port_file.read_text())
        for n in a.n:
            for line in a.lines.split(","):
                urls = tmp / f"urls-{line}-{n}.parquet"
                write_urls(urls, port, n, a.hosts, stall=line == "stall")
                _report(f"{n} URLs, {line}", line, run_line(tmp, f"{line}-{n}", urls, a))
    finally:
        server.terminate()
        server.wait()
    return 0


def _report(title: str, line: str, results: dict) -> None:
    what = {"plain": "all URLs answer",
            "stall": f"2% stall {STALL_S} s, timeout {TIMEOUT_S} s, no retries"}[line]
    print(f"{title}: {what}")
    rate = {}
    for name, r in results.items():
        rate[name] = r["ok"] / r["wall"]
        print(f"  {name:12s} {r['ok']:6d} ok in {r['wall']:6.1f} s = {rate[name]:6.1f} "
              f"images/s, {r['cpu'] / max(1, r['ok']) * 1000:5.1f} CPU ms/image, peak "
              f"memory {r['pss']:5.0f} MB PSS ({r['rss']:.0f} MB RSS)")
    if results["curate run"].get("timeline"):
        print(f"  curate run: {results['curate run']['timeline']}")
    print(f"  ratio curate run / img2dataset: "
          f"{rate['curate run'] / rate['img2dataset']:.2f}x", flush=True)


if __name__ == "__main__":
    sys.exit(main())

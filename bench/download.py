"""Benchmark: our download stage vs img2dataset on the same loopback URL list.

    .venv/bin/python bench/download.py                # 3000 URLs, 2 processes
    .venv/bin/python bench/download.py --n 10000 --processes 4

img2dataset is a benchmark-only peer. Its current release (1.47) pins webdataset<0.3
and pandas<3, so it is installed in its own venv, looked up at
~/.cache/vlm-curation/img2dataset-venv (or --img2dataset-python / $IMG2DATASET_PYTHON):

    python3 -m venv ~/.cache/vlm-curation/img2dataset-venv
    ~/.cache/vlm-curation/img2dataset-venv/bin/pip install img2dataset==1.47.0

Images: a pool of real-looking JPEGs (random crops of the bundled demo photos,
rescaled to 320-1600 px on the long side, light grain, quality 80-95), served by
an aiohttp server in its own process on 127.0.0.1; URL i serves pool image
i % pool. Both tools get the same URL list, the same number of processes, the
same resize (shortest side 256, only shrink, JPEG quality 95) and write tars:
img2dataset (bench-only dependency) with output_format=webdataset; ours runs
``DownloadStage.process`` on batches of ``--batch`` URLs in a multiprocessing
pool and writes each batch as a WebDataset tar (stdlib tarfile). Our per-host politeness
limits are opened (``per_host_rps=0``, 64 per host), since every URL shares one
host and img2dataset has no such limits. Each side runs as a child process;
images/s counts successful images over its whole wall time (imports included),
peak memory is the sampled sum of RSS over the child's process tree.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
IMAGES = REPO / "curation" / "demo" / "data" / "images"
SIZE = 256
# img2dataset 1.47 pins webdataset<0.3 and pandas<3, which clash with the project's
# pins, so it lives in its own venv (see README "Benchmark"); any interpreter with
# img2dataset can be named with --img2dataset-python.
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


def serve(pool_dir: str, port_file: str) -> None:
    """Child process: aiohttp server on 127.0.0.1 serving /img/<i>.jpg from memory."""
    from aiohttp import web

    blobs = [p.read_bytes() for p in sorted(Path(pool_dir).glob("*.jpg"))]

    async def handle(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        return web.Response(body=blobs[i % len(blobs)], content_type="image/jpeg")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/img/{i}.jpg", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        Path(port_file).write_text(str(port))
        while True:
            await asyncio.sleep(3600)

    import asyncio

    asyncio.run(main())


def run_img2dataset(urls_file: str, out: str, processes: int, per_shard: int) -> None:
    from img2dataset import download

    download(url_list=urls_file, image_size=SIZE, output_folder=out,
             processes_count=processes, thread_count=64, resize_mode="keep_ratio",
             resize_only_if_bigger=True, encode_quality=95, output_format="webdataset",
             input_format="txt", number_sample_per_shard=per_shard, timeout=10,
             distributor="multiprocessing", retries=0)


def _our_batch(args: tuple[int, list[str], str]) -> dict:
    from curation.document import Document, ImageRecord, Provenance
    from curation.download.config import DownloadConfig
    from curation.download.stage import DownloadStage

    index, urls, out = args
    cfg = DownloadConfig(allow_hosts=["127.0.0.1"], per_host_rps=0,
                         per_host_concurrency=64, max_in_flight=64,
                         resize_mode="shortest", resize_size=SIZE, encode_quality=95)
    docs = [Document(f"{index}-{i}", "bench", None, [""], [ImageRecord(url=u)],
                     Provenance("urls.txt", index + i)) for i, u in enumerate(urls)]
    DownloadStage(cfg).process(docs)
    counts: dict[str, int] = {}
    with tarfile.open(f"{out}/{index:05d}.tar", "w") as tar:
        for d in docs:
            im = d.images[0]
            counts[im.status] = counts.get(im.status, 0) + 1
            if im.data:
                key = d.doc_id.replace("-", "_")
                _add(tar, f"{key}.jpg", im.data)
                _add(tar, f"{key}.json", json.dumps(d.to_dict()).encode())
    return counts


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), time.time()
    tar.addfile(info, io.BytesIO(data))


def run_ours(urls_file: str, out: str, processes: int, batch: int) -> None:
    import multiprocessing as mp

    urls = Path(urls_file).read_text().split()
    jobs = [(i, urls[i:i + batch], out) for i in range(0, len(urls), batch)]
    totals: dict[str, int] = {}
    with mp.get_context("fork").Pool(processes) as pool:
        for counts in pool.imap_unordered(_our_batch, jobs):
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v
    Path(out, "status.json").write_text(json.dumps(totals))


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over ``root`` and its descendants (from /proc)."""
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
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def timed_child(python: str, role: str, *args: str) -> tuple[float, float]:
    """Run this script in ``role``; returns (wall seconds, peak tree RSS in MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([python, __file__, "--role", role, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{role} failed:\n{err.decode()[-3000:]}")
    return wall, peak / 1024


def i2d_successes(out: Path) -> int:
    return sum(json.loads(p.read_text())["successes"] for p in out.glob("*_stats.json"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="number of URLs")
    ap.add_argument("--pool", type=int, default=300, help="distinct JPEGs served")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=250, help="URLs per task / shard")
    ap.add_argument("--img2dataset-python", default=os.environ.get(
        "IMG2DATASET_PYTHON", str(PEER_VENV / "bin" / "python")
        if PEER_VENV.exists() else sys.executable),
        help="interpreter with img2dataset installed (default: %(default)s)")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role:
        return _child(a.role, a.args)
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        return _bench(Path(tmp), a)


def _child(role: str, args: list[str]) -> int:
    if role == "serve":
        serve(*args)
    elif role == "img2dataset":
        run_img2dataset(args[0], args[1], int(args[2]), int(args[3]))
    elif role == "ours":
        run_ours(args[0], args[1], int(args[2]), int(args[3]))
    return 0


def _bench(tmp: Path, a: argparse.Namespace) -> int:
    pool_dir = tmp / "pool"
    pool_dir.mkdir()
    t0 = time.perf_counter()
    paths = make_pool(pool_dir, a.pool)
    mb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
    print(f"made {len(paths)} JPEGs (mean {mb:.0f} KB) in {time.perf_counter() - t0:.1f} s")
    port_file = tmp / "port"
    server = subprocess.Popen([sys.executable, __file__, "--role", "serve", str(pool_dir),
                               str(port_file)])
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port_file.read_text()}"
        urls = tmp / "urls.txt"
        urls.write_text("".join(f"{base}/img/{i}.jpg\n" for i in range(a.n)))
        results = _compare(tmp, str(urls), a)
    finally:
        server.terminate()
        server.wait()
    _report(results, a)
    return 0


def _compare(tmp: Path, urls: str, a: argparse.Namespace) -> dict:
    i2d_out, our_out = tmp / "i2d", tmp / "ours"
    our_out.mkdir()
    i2d_wall, i2d_mem = timed_child(a.img2dataset_python, "img2dataset", urls,
                                    str(i2d_out), str(a.processes), str(a.batch))
    our_wall, our_mem = timed_child(sys.executable, "ours", urls, str(our_out),
                                    str(a.processes), str(a.batch))
    ours_ok = json.loads((our_out / "status.json").read_text()).get("ok", 0)
    return {"img2dataset": (i2d_successes(i2d_out), i2d_wall, i2d_mem),
            "ours": (ours_ok, our_wall, our_mem)}


def _report(results: dict, a: argparse.Namespace) -> None:
    print(f"{a.n} URLs, {a.processes} processes, resize shortest side {SIZE} (shrink only)")
    rate = {}
    for name, (ok, wall, mem) in results.items():
        rate[name] = ok / wall
        print(f"  {name:12s} {ok:6d} ok in {wall:6.1f} s = {rate[name]:7.1f} images/s, "
              f"peak RSS {mem:6.0f} MB")
    print(f"ratio ours / img2dataset: {rate['ours'] / rate['img2dataset']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())

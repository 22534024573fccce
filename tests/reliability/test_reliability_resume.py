"""Kill real runs (driver SIGKILL during the first pass, during a global stage's fit,
during the download pass and while shards are packed; a Ray worker SIGKILL
mid-stage), start them again, and compare with an uninterrupted run sample by
sample. Kill points are read off the output folder's markers, not log lines."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from curation.demo.corpus import DATA, build_documents
from curation.http_server import StaticServer
from tests.conftest import REPO

PIPELINE = {"name": "resume", "ingest": {"docs_per_unit": 2},
            "stages": [{"dedup": {}}, {"download": {"allow_hosts": ["127.0.0.1"]}}],
            "writer": {"max_samples": 3}}


@pytest.fixture(scope="module")
def slow_corpus(tmp_path_factory):
    """Six input files served by a slow server, so a run can be caught mid-way."""
    root = tmp_path_factory.mktemp("resume")
    with StaticServer(DATA, delay_s=0.15) as server:
        docs = build_documents(server.base_url)
        inputs = root / "in"
        inputs.mkdir()
        for i in range(6):
            part = docs[i::6]
            (inputs / f"part{i}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in part))
        (root / "p.yaml").write_text(yaml.safe_dump(PIPELINE))
        yield root

def curate(root: Path, out: Path, address: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "curation.cli", "run", str(root / "p.yaml"), "--input",
         str(root / "in"), "--output", str(out), "--address", address],
        cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.exists() else 0


# kill point -> condition on the output folder that means "the run is there now"
KILL_POINTS = {
    "first-pass": lambda out: count(out / "_work" / "facts-00", "*.parquet") >= 2,
    "fit": lambda out: (count(out / "_work" / "ingest", "*.done.json") == 6
                        and not (out / "_work" / "decision-00" / "_summary.json").exists()
                        and count(out / "_work" / "facts-00", "*.parquet") >= 1),
    "download": lambda out: count(out / "stats", "*.json") >= 2,
    "pack": lambda out: count(out / "manifest", "*.parquet") >= 1,
}


def run_until(proc: subprocess.Popen, out: Path, when, timeout: float = 120) -> bool:
    """Poll the output folder until ``when(out)``; then SIGKILL the driver."""
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if when(out):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    proc.wait()
    return False


def samples(out: Path) -> dict[str, str]:
    """key -> sha256 of all the sample's members, over every shard."""
    found: dict[str, hashlib._Hash] = {}
    records: set[str] = set()
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                key, ext = m.name.split(".", 1)
                if ext == "json":
                    assert key not in records, f"duplicate sample {key}"
                    records.add(key)
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                found.setdefault(key, hashlib.sha256()).update(m.name.encode() + data)
    return {k: h.hexdigest() for k, h in found.items()}


def mtimes(out: Path) -> dict[str, int]:
    """Finished units' stats and finished shards: what a resumed run must not redo."""
    found = {}
    for folder, pattern in (("stats", "*.json"), ("manifest", "*.parquet")):
        for p in (out / folder).glob(pattern) if (out / folder).exists() else []:
            found[f"{folder}/{p.name}"] = p.stat().st_mtime_ns
    return found


@pytest.fixture(scope="module")
def clean_run(ray_session, slow_corpus):
    import ray

    address = ray.get_runtime_context().gcs_address
    out = slow_corpus / "clean"
    proc = curate(slow_corpus, out, address)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out, address


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_driver_killed_then_rerun_matches_clean_run(clean_run, slow_corpus, point):
    clean, address = clean_run
    out = slow_corpus / f"killed-{point}"
    assert run_until(curate(slow_corpus, out, address), out, KILL_POINTS[point]), \
        "the run finished before the kill point"
    assert not (out / "stats.json").exists(), "run was not cut"
    before = mtimes(out)
    proc = curate(slow_corpus, out, address)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert samples(out) == samples(clean)
    after = mtimes(out)
    assert all(after[name] == mtime for name, mtime in before.items())
    assert json.loads((out / "stats.json").read_text())["documents_written"] == \
        json.loads((clean / "stats.json").read_text())["documents_written"]
    assert not (out / "_work").exists()


def _ray_task_workers() -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("ray::Map"):
            pids.append(int(pid))
    return pids


def test_worker_killed_mid_stage_is_retried(clean_run, slow_corpus):
    clean, address = clean_run
    out = slow_corpus / "worker-killed"
    proc = curate(slow_corpus, out, address)
    killed = False
    deadline = time.time() + 120
    while proc.poll() is None and not killed and time.time() < deadline:
        if count(out / "stats", "*.json") >= 1:  # the download pass is under way
            pids = _ray_task_workers()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed = True
        time.sleep(0.01)
    proc.communicate(timeout=300)
    assert killed, "no Ray task worker was found to kill"
    assert proc.returncode == 0
    assert samples(out) == samples(clean)

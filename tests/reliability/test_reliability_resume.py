"""Kill real runs (driver SIGKILL during ingest and during writing; a Ray worker
SIGKILL mid-stage), start them again, and compare with an uninterrupted run."""

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
            "stages": [{"download": {"allow_hosts": ["127.0.0.1"]}}],
            "writer": {"max_samples": 1}}


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


def run_until(proc: subprocess.Popen, marker: str, timeout: float = 120) -> bool:
    """Read progress lines until ``marker`` shows up; then SIGKILL the driver."""
    deadline = time.time() + timeout
    for line in proc.stderr:  # type: ignore[union-attr]
        if marker in line or time.time() > deadline:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
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


def finished_shards(out: Path) -> dict[str, int]:
    done = {p.stem for p in (out / "stats").glob("*.json")} if (out / "stats").exists() \
        else set()
    return {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")
            if p.name.rsplit("-", 1)[0] in done} if (out / "shards").exists() else {}


@pytest.fixture(scope="module")
def clean_run(ray_session, slow_corpus):
    import ray

    address = ray.get_runtime_context().gcs_address
    out = slow_corpus / "clean"
    proc = curate(slow_corpus, out, address)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out, address


@pytest.mark.parametrize("marker", ["ingest [2/6]", "write [3/"])
def test_driver_killed_then_rerun_matches_clean_run(clean_run, slow_corpus, marker):
    clean, address = clean_run
    out = slow_corpus / f"killed-{marker.split()[0]}"
    assert run_until(curate(slow_corpus, out, address), marker), "marker never printed"
    before = finished_shards(out)
    total_units = len(list((clean / "stats").glob("*.json")))
    assert len({n.rsplit("-", 1)[0] for n in before}) < total_units, "run was not cut"
    proc = curate(slow_corpus, out, address)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert samples(out) == samples(clean)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}
    assert all(after[name] == mtime for name, mtime in before.items())
    assert json.loads((out / "stats.json").read_text())["documents_written"] == \
        json.loads((clean / "stats.json").read_text())["documents_written"]


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
    for line in proc.stderr:  # type: ignore[union-attr]
        if not killed and line.startswith("write [1/"):
            for _ in range(50):
                pids = _ray_task_workers()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.05)
    proc.wait(timeout=300)
    assert killed, "no Ray task worker was found to kill"
    assert proc.returncode == 0
    assert samples(out) == samples(clean)

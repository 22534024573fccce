"""A real two-node Ray cluster on this machine (loopback): `curate run --address`
against it, the second node killed mid-run, every document still accounted for."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from curation.demo.corpus import DATA, build_documents
from curation.http_server import StaticServer
from tests.conftest import REPO

RAY = str(Path(sys.executable).with_name("ray"))
ENV = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1", RAY_AUTH_MODE="disabled",
           PYTHONUNBUFFERED="1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_tree_matching(text: str) -> None:
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def cluster(tmp_path):
    """Head (1 CPU) + worker node (1 CPU, own process group so it can be killed)."""
    temp_dir = Path("/tmp") / f"raycl{os.getpid()}{free_port()}"
    port = free_port()
    address = f"127.0.0.1:{port}"
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--node-ip-address",
                    "127.0.0.1", "--num-cpus", "1", "--include-dashboard", "false",
                    "--disable-usage-stats", "--temp-dir", str(temp_dir)],
                   env=ENV, check=True, capture_output=True, timeout=120)
    worker = subprocess.Popen([RAY, "start", "--address", address, "--node-ip-address",
                               "127.0.0.1", "--num-cpus", "1", "--block",
                               "--disable-usage-stats"], env=ENV, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(60):  # wait until the worker node has joined
            status = subprocess.run([RAY, "status", "--address", address], env=ENV,
                                    capture_output=True, text=True, timeout=60).stdout
            if status.count("node_") >= 2:
                break
            time.sleep(1)
        else:
            pytest.fail(f"worker node never joined:\n{status}")
        yield address, worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        kill_tree_matching(str(temp_dir))


def test_run_survives_losing_a_node(cluster, tmp_path):
    address, worker = cluster
    pipeline = {"name": "cluster", "ingest": {"docs_per_unit": 2},
                "stages": [{"download": {"allow_hosts": ["127.0.0.1"]}}]}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pipeline))
    with StaticServer(DATA, delay_s=0.2) as server:
        docs = build_documents(server.base_url)
        (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "curation.cli", "run", str(tmp_path / "p.yaml"), "-i",
             str(tmp_path / "docs.jsonl"), "-o", str(out), "--address", address],
            cwd=REPO, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        killed_at = None
        deadline = time.time() + 120
        while proc.poll() is None and killed_at is None and time.time() < deadline:
            stats = out / "stats"
            if stats.exists() and len(list(stats.glob("*.json"))) >= 2:  # mid-run
                os.killpg(worker.pid, signal.SIGKILL)  # raylet and its workers die
                killed_at = time.time()
            time.sleep(0.01)
        _, err = proc.communicate(timeout=300)
        lines = err.splitlines()
    assert killed_at is not None, "".join(lines[-20:])
    assert proc.returncode == 0, "".join(lines[-20:])
    assert any("2 CPUs, 0 GPUs, 2 node(s)" in line for line in lines)
    totals = json.loads((out / "stats.json").read_text())
    assert totals["documents_ingested"] == len(docs)
    assert totals["documents_written"] + sum(totals["documents_dropped"].values()) == len(docs)
    keys = pq.read_table(out / "manifest").column("key").to_pylist()
    assert len(keys) == len(set(keys)) == totals["documents_written"]
    assert totals["images_in"] == sum(totals["image_status"].values())

"""Shared fixtures: one Ray session per test run, real servers on 127.0.0.1 only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole run (ray.init costs ~3 s), bound to loopback. Two
    logical GPUs let GPU actor pools be scheduled (and counted) without a GPU: their
    stages fall back to the CPU where CUDA is unavailable."""
    from curation.runner.session import start_ray, stop_ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    start_ray(address=None, num_cpus=2, num_gpus=2)
    yield
    stop_ray()


@pytest.fixture
def static_server(tmp_path):
    """Factory: serve a folder on 127.0.0.1; returns the StaticServer."""
    from curation.http_server import StaticServer

    servers = []

    def make(root: Path):
        srv = StaticServer(root).__enter__()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.__exit__(None, None, None)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto_server) on 127.0.0.1; yields fsspec options."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start")
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "eu-west-1"}}
    yield options
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the moto server; yields (bucket URI, storage options)."""
    import uuid

    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    name = f"test-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    yield f"s3://{name}", s3_server

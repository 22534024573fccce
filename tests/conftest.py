"""Shared fixtures: one Ray session per test run, real servers on 127.0.0.1 only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole run (ray.init costs ~3 s), bound to loopback."""
    from curation.runner.session import start_ray, stop_ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    start_ray(address=None, num_cpus=2)
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

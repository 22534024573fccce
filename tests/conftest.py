"""Shared fixtures: one Ray session per test run, real servers on 127.0.0.1 only, and
a network guard that fails any test trying to reach beyond this machine."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
NETGUARD = REPO / "tests" / "netguard"

sys.path.insert(0, str(NETGUARD))
import curation_netguard  # noqa: E402


class NetGuard:
    """Refusals (connections beyond loopback, DNS queries) seen by the session, from
    this process and from every Ray worker and subprocess it started. Every test
    phase that caused one fails, unless the test declared it ``expected``."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.log: list[dict] = []
        self._offsets: dict[str, int] = {}
        self._checked = 0

    def mark(self) -> int:
        self.log.extend(curation_netguard.read_new(self.log_dir, self._offsets))
        return len(self.log)

    def since(self, mark: int) -> list[dict]:
        """Refusals logged after ``mark()`` returned ``mark``."""
        return self.log[mark:self.mark()]

    def expect(self, entries: list[dict]) -> None:
        """The test made these attempts on purpose (the guard's own tests)."""
        for entry in entries:
            entry["expected"] = True

    def unchecked(self) -> list[dict]:
        """Refusals since the last check that count: TCP connections and DNS queries
        nobody expected, other than Ray's own telemetry probes."""
        new = self.log[self._checked:self.mark()]
        self._checked = len(self.log)
        return [a for a in new if a["kind"] in ("connect", "resolve")
                and not a["telemetry"] and not a.get("expected")]


_GUARD: NetGuard | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Guard this process now, and every process it starts: the guard's folder goes
    first on PYTHONPATH (its sitecustomize installs the guard at start-up) and the log
    folder is named in the environment, both inherited by Ray's raylet, its workers
    and any subprocess."""
    global _GUARD
    log_dir = tempfile.mkdtemp(prefix="curation-netguard-")
    os.environ[curation_netguard.ENV] = log_dir
    # No usage reports to usage-stats.ray.io (Ray's dashboard still probes cloud
    # metadata addresses at start-up; the guard refuses those, see RAY_TELEMETRY).
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    path = [str(NETGUARD)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                              if p and p != str(NETGUARD)]
    os.environ["PYTHONPATH"] = os.pathsep.join(path)
    curation_netguard.install(log_dir)
    _GUARD = NetGuard(log_dir)
    fake_dns = Path(log_dir, "fake_dns.json")  # see tests/netguard/curation_fake_dns.py
    fake_dns.write_text("{}")
    os.environ["CURATION_FAKE_DNS"] = str(fake_dns)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _GUARD is not None:
        shutil.rmtree(_GUARD.log_dir, ignore_errors=True)


def _check_guard(item: pytest.Item, phase: str) -> None:
    attempts = _GUARD.unchecked() if _GUARD is not None else []
    if attempts:
        lines = [f"  pid {a['pid']} {a['kind']} {a['target']}\n{a['where']}"
                 for a in attempts[:5]]
        pytest.fail(f"{item.nodeid} ({phase}) tried to reach beyond this machine "
                    f"({len(attempts)} refused):\n" + "\n".join(lines), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    try:
        return (yield)
    finally:
        _check_guard(item, "setup")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    finally:
        _check_guard(item, "call")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    try:
        return (yield)
    finally:
        _check_guard(item, "teardown")


@pytest.fixture(scope="session", autouse=True)
def net_guard() -> NetGuard:
    """The session's guard (installed at start-up, see ``pytest_configure``)."""
    assert _GUARD is not None and curation_netguard.installed() == _GUARD.log_dir
    return _GUARD


@pytest.fixture(scope="session")
def fake_dns():
    """Set the fake resolver's table ({name: IP | "nxdomain" | "again"}); used by
    downloads configured with ``getaddrinfo: curation_fake_dns:getaddrinfo``."""
    path = Path(os.environ["CURATION_FAKE_DNS"])

    def set_table(table: dict[str, str]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(table))
        tmp.replace(path)

    yield set_table
    set_table({})


@pytest.fixture(scope="session")
def ray_session(net_guard):
    """One local Ray for the whole run (ray.init costs ~3 s), bound to loopback; its
    workers inherit the network guard. Two logical GPUs let GPU actor pools be
    scheduled (and counted) without a GPU: their stages fall back to the CPU where
    CUDA is unavailable."""
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

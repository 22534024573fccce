"""The test network guard (tests/conftest.py): connections beyond loopback and DNS
queries are refused and recorded, in this process, in Ray workers and in
subprocesses, and the downloader cannot get past it even with its policy opened."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from curation.document import Document, ImageRecord, Provenance
from curation.download.config import DownloadConfig
from curation.download.stage import DownloadStage

OUTSIDE = ("192.0.2.1", 80)  # TEST-NET-1: documentation only, never routed


def _connect_outside() -> str:
    try:
        socket.create_connection(OUTSIDE, timeout=2).close()
    except OSError as exc:
        return str(exc)
    return "connected"


def _expect(net_guard, mark: int, kind: str, text: str) -> list[dict]:
    seen = [a for a in net_guard.since(mark) if a["kind"] == kind and text in a["target"]]
    net_guard.expect(seen)
    return seen


def test_refused_and_recorded_here(net_guard):
    mark = net_guard.mark()
    assert "test network guard" in _connect_outside()
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 80)
    assert [a["pid"] for a in _expect(net_guard, mark, "connect", "192.0.2.1")]
    assert _expect(net_guard, mark, "resolve", "example.com")
    socket.getaddrinfo("localhost", 80)  # /etc/hosts names and loopback stay open
    socket.getaddrinfo("127.0.0.1", 80)


def test_refused_and_recorded_in_ray_workers(ray_session, net_guard):
    import os

    import ray

    def attempt() -> tuple[int, str]:  # defined here: shipped by value to the worker
        import os
        import socket

        try:
            socket.create_connection(("192.0.2.1", 80), timeout=2).close()
        except OSError as exc:
            return os.getpid(), str(exc)
        return os.getpid(), "connected"

    mark = net_guard.mark()
    pid, outcome = ray.get(ray.remote(num_cpus=0)(attempt).remote())
    assert "test network guard" in outcome and pid != os.getpid()
    assert [a["pid"] for a in _expect(net_guard, mark, "connect", "192.0.2.1")] == [pid]


def test_refused_and_recorded_in_subprocesses(net_guard):
    mark = net_guard.mark()
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=2)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "test network guard" in proc.stderr
    assert _expect(net_guard, mark, "connect", "192.0.2.1")


def test_downloader_with_policy_opened_still_stays_here(net_guard):
    doc = Document("d", "mmc4", None, ["t"], [ImageRecord(url="http://192.0.2.1/a.jpg")],
                   Provenance("x.jsonl", 1))
    mark = net_guard.mark()
    DownloadStage(DownloadConfig(allow_hosts=["0.0.0.0/0"], max_retries=0)).process([doc])
    assert doc.images[0].status == "connection_error"
    assert _expect(net_guard, mark, "connect", "192.0.2.1")

"""Find (or, as root in CI, install) Debian's headless Chromium and load a page with it.

Flags from shared/README.md; --virtual-time-budget lets the load event and the
report's inline check script run before the DOM is dumped."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--virtual-time-budget=10000"]
INSTALL_TIMEOUT_S = 900


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt(*args: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(["apt-get", *args], env=env, capture_output=True,
                              timeout=INSTALL_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_chromium() -> str:
    """Path of chromium; installs it with apt-get when root, else skips the test."""
    path = chromium_path()
    if path:
        return path
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("headless Chromium not installed and cannot be installed here "
                    "(needs root and apt-get: `apt-get install -y chromium`)")
    if not _apt("install", "-y", "chromium"):
        _apt("update")
        _apt("install", "-y", "chromium")
    path = chromium_path()
    if not path:
        pytest.skip("`apt-get install -y chromium` failed (no package source reachable?); "
                    "the browser test needs Debian's chromium")
    return path


def run_chromium(binary: str, url: str, *mode: str, timeout: int = 120) -> str:
    """Run one headless Chromium command on ``url``; returns its stdout."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *mode, url],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def dump_dom(binary: str, page: Path) -> str:
    return run_chromium(binary, page.resolve().as_uri(), "--dump-dom")


def screenshot(binary: str, page: Path, png: Path) -> Path:
    run_chromium(binary, page.resolve().as_uri(), f"--screenshot={png}",
                 "--window-size=1200,3000", "--hide-scrollbars")
    return png

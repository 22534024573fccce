"""Ruff over the project: style, and the banned-api rule that keeps `import ray` in
curation/runner/ only (the stage contract)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_ruff_clean_and_ray_only_in_runner():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run([ruff, "check", "curation", "filters", "shards",
                             "trainer_bridge", "tests", "bench"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]

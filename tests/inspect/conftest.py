"""Fixtures of the inspect tests (the output builder lives in inspect_builder.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from inspect_builder import build_output


@pytest.fixture
def constructed_output(tmp_path) -> Path:
    """A finished output with the counts in ``inspect_builder.EXPECTED``."""
    return build_output(tmp_path / "out")

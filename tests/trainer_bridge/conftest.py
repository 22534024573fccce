"""Fixtures of the trainer bridge tests (builders live in bridge_builder.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_builder import build_output


@pytest.fixture(scope="module")
def bridge_output(tmp_path_factory) -> tuple[Path, list[str]]:
    """A finished-looking output (manifest parts only) and all its sample keys."""
    root = tmp_path_factory.mktemp("bridge") / "out"
    return root, build_output(root)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    """A real Hugging Face fast tokenizer trained here (no hub download)."""
    pytest.importorskip("transformers")
    from bridge_builder import make_doc

    from tests.support.tokenizers import word_level_tokenizer

    corpus = [" ".join(make_doc(i).texts) for i in range(40)]
    corpus += ["USER ASSISTANT : a photo number what is shown ? a cat dog red blue",
               "A chat between a curious user and an artificial intelligence assistant ."]
    return word_level_tokenizer(corpus)

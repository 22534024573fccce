"""The per-actor engine: concurrent callers get their own vectors in their own order,
batches are shared, and a failing model thread fails every caller (never a drop)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from curation.demo.corpus import DATA as DEMO
from curation.scoring.engine import EngineError, ScoringEngine
from curation.scoring.model import TINY_MODEL, load_clip
from curation.scoring.prepare import InputSpec, prepare_image

IMAGES = [p.read_bytes() for p in sorted((DEMO / "images").glob("*.jpg"))[:9]]


@pytest.fixture(scope="module")
def clip():
    return load_clip(TINY_MODEL, None, device="cpu")


def reference(clip, datas: list[bytes]) -> np.ndarray:
    """One image at a time, straight through open_clip on the same decode."""
    spec = InputSpec.from_transform(clip.preprocess)
    with torch.no_grad():
        feats = clip.model.encode_image(torch.stack([prepare_image(d, spec) for d in datas]))
    return torch.nn.functional.normalize(feats, dim=-1).numpy()


def test_concurrent_callers_get_their_own_vectors_in_order(clip):
    engine = ScoringEngine(clip, batch_size=4, decode_threads=2, prefetch_batches=1)
    try:
        calls = {"a": IMAGES[:7], "b": IMAGES[7:] + [b"junk"] + IMAGES[:2]}
        out: dict = {}

        def run(name):
            out[name] = engine.embed_images(calls[name])

        threads = [threading.Thread(target=run, args=(n,)) for n in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        np.testing.assert_allclose(out["a"].vecs, reference(clip, calls["a"]), atol=1e-5)
        b = out["b"]
        assert list(b.failed) == [2] and "Error" in b.failed[2]
        good = [0, 1, 3, 4]
        np.testing.assert_allclose(b.vecs[good], reference(clip, IMAGES[7:] + IMAGES[:2]),
                                   atol=1e-5)
        texts = engine.embed_texts(["a cat", "", "a horse in a field " * 30])
        assert texts.vecs.shape == (3, 32) and not texts.failed
        assert engine.embed_images([]).vecs is None
    finally:
        engine.close()


def test_trimmed_text_encoding_equals_open_clip(clip):
    engine = ScoringEngine(clip, batch_size=2, decode_threads=1)
    try:
        assert engine.trim  # the tiny CLIP is causal with EOT pooling
        texts = ["a cat", "two dogs playing in the snow", "", "word " * 100, "x"]
        got = engine.embed_texts(texts).vecs
        with torch.no_grad():
            ref = clip.model.encode_text(clip.tokenizer(texts), normalize=True).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-5)
    finally:
        engine.close()


def test_a_failing_model_fails_every_caller(clip, monkeypatch):
    engine = ScoringEngine(clip, batch_size=4, decode_threads=1)

    def broken(*_a, **_k):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(clip.model, "encode_image", broken)
    try:
        with pytest.raises(EngineError, match="illegal memory access"):
            engine.embed_images(IMAGES[:3])
        with pytest.raises(EngineError):  # and every later call
            engine.embed_texts(["a cat"])
    finally:
        engine.close()


def test_bf16_weights_run_end_to_end():
    """The GPU precision path (bf16 weights, bf16 input, fp32 LayerNorm), on the CPU."""
    clip16 = load_clip(TINY_MODEL, None, device="cpu", precision="bf16")
    engine = ScoringEngine(clip16, batch_size=4, decode_threads=1)
    try:
        assert engine.trim  # trimmed texts match encode_text within bf16's tolerance
        vecs = engine.embed_images(IMAGES[:5]).vecs
        texts = engine.embed_texts(["a cat", "a rocket on a launch pad"]).vecs
    finally:
        engine.close()
    assert vecs.dtype == np.float32 and vecs.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    ref = reference(load_clip(TINY_MODEL, None, device="cpu"), IMAGES[:5])
    assert np.abs(vecs - ref).max() < 0.05  # same seeded weights, rounded to bf16
    assert texts.shape == (2, 32)

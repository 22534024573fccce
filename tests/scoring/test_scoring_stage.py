"""The clip_score stage on a tiny random-weight open_clip model, against a direct
open_clip computation on the same inputs with the same weights."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from curation.demo.corpus import DATA as DEMO
from curation.document import Document, ImageRecord, Provenance
from curation.pipeline_config import parse_pipeline
from curation.scoring.assign import mmc4_assign
from curation.scoring.encode import EMPTY_TEXT_SIM
from curation.scoring.model import TINY_MODEL, write_tiny_config
from curation.scoring.stage import ClipScoreConfig, ClipScoreStage

IMAGES = sorted((DEMO / "images").glob("*.jpg"))[:5]
TEXTS = ["an astronaut in a white suit", "a camera on a tripod", "a cat lying down",
         "a cup of coffee", "a horse in a field"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny config dir and a seeded random-weight state dict saved from it."""
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_config(root / "configs")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_MODEL, pretrained=None)
    torch.save(model.state_dict(), root / "tiny.pt")
    return root / "configs", root / "tiny.pt"


def make_stage(checkpoint, **kw) -> ClipScoreStage:
    cfg_dir, weights = checkpoint
    cfg = ClipScoreConfig(model=TINY_MODEL, pretrained=str(weights),
                          model_config_dir=str(cfg_dir), device="cpu", **kw)
    return ClipScoreStage(cfg)


def draft_open(data: bytes, size: int) -> Image.Image:
    """Pillow's reduced-size JPEG decode to >= size x size, then RGB."""
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (size, size))
    return img.convert("RGB")


def direct_similarities(weights: Path, datas: list[bytes], texts: list[str]) -> np.ndarray:
    """open_clip's own transform and encoders on the same reduced-size decode."""
    model, _, preprocess = open_clip.create_model_and_transforms(
        TINY_MODEL, pretrained=str(weights))
    model.eval()
    tok = open_clip.get_tokenizer(TINY_MODEL)
    with torch.no_grad():
        pix = torch.stack([preprocess(draft_open(d, 64)) for d in datas])
        img = model.encode_image(pix, normalize=True)
        txt = model.encode_text(tok(texts), normalize=True)
    return (img @ txt.T).numpy()


def doc_of(datas: list[bytes], texts: list[str]) -> Document:
    ims = [ImageRecord(f"http://127.0.0.1/{i}.jpg", status="ok", data=d)
           for i, d in enumerate(datas)]
    return Document("d0", "mmc4", None, list(texts), ims, Provenance("in.jsonl", 1))


def test_scores_equal_direct_open_clip(checkpoint):
    datas = [p.read_bytes() for p in IMAGES]
    stage = make_stage(checkpoint, batch_size=2, decode_threads=2)
    doc = doc_of(datas, TEXTS[:3])
    pair = Document("p0", "coyo", None, [TEXTS[4]], [ImageRecord("u", status="ok",
                                                                 data=datas[4])],
                    Provenance("in.parquet", row=0))
    stage.process([doc, pair])
    expect = direct_similarities(checkpoint[1], datas, TEXTS)
    got = np.array([im.similarities for im in doc.images])
    # resampling only the cropped region rounds a few pixels by one level
    np.testing.assert_allclose(got, expect[:, :3], atol=1e-4)
    assert doc.similarity_matrix == [im.similarities for im in doc.images]
    assert pair.images[0].matched_text_index == 0
    assert pair.images[0].matched_sim == pytest.approx(expect[4, 4], abs=1e-4)
    # the written assignment is the MMC4 one on the written matrix
    index, _ = mmc4_assign(got)
    assert [im.matched_text_index for im in doc.images] == index
    assert sorted(set(index)) == [0, 1, 2]  # 5 images, 3 sentences: each sentence used
    assert stage.counts["images_scored"] == 6


def test_bad_bytes_empty_and_long_texts(checkpoint):
    good = IMAGES[0].read_bytes()
    long_text = "a horse in a field " * 200  # far beyond the 77-token context
    doc = doc_of([good, b"not an image", good], ["", long_text, "   "])
    doc.images.append(ImageRecord("http://127.0.0.1/gone.jpg", status="http_404"))
    stage = make_stage(checkpoint)
    stage.process([doc])
    assert doc.images[1].status == "clip_undecodable"
    assert doc.images[1].dropped_by == "clip_score"
    assert stage.counts["clip_undecodable"] == 1
    assert doc.images[3].status == "http_404"
    assert doc.similarity_matrix[1] == [] and doc.similarity_matrix[3] == []
    row = doc.images[0].similarities
    assert row[0] == row[2] == EMPTY_TEXT_SIM
    assert [doc.images[i].matched_text_index for i in (0, 2)] == [1, 1]  # never empty
    expect = direct_similarities(checkpoint[1], [good], [long_text])
    assert row[1] == pytest.approx(float(expect[0, 0]), abs=1e-4)


def test_text_only_documents_and_no_texts(checkpoint):
    stage = make_stage(checkpoint)
    text_only = Document("t", "mmc4", None, ["words"], [], Provenance("f", 2))
    no_text = doc_of([IMAGES[1].read_bytes()], [])
    stage.process([text_only, no_text])
    assert text_only.similarity_matrix == []
    assert no_text.images[0].similarities == []
    assert no_text.images[0].matched_text_index is None
    assert no_text.images[0].status == "ok"


def test_config_resources_and_yaml():
    stage = ClipScoreStage(ClipScoreConfig(num_gpus=0.5, num_cpus=4, concurrency=2))
    res = stage.resources
    assert (res.actor_pool, res.num_gpus, res.num_cpus, res.concurrency) == (True, 0.5, 4, 2)
    assert res.max_concurrent_calls == 2  # process() is thread-safe
    assert ClipScoreStage().resources.concurrency is None  # the runner sizes the pool
    assert stage.clip is None  # nothing is loaded on the machine that builds the plan
    cfg = parse_pipeline({"stages": [{"clip_score": {"model": TINY_MODEL,
                                                     "pretrained": None}}]})
    assert cfg.stages[0].stage.config.model == TINY_MODEL
    with pytest.raises(ValueError, match="precision"):
        parse_pipeline({"stages": [{"clip_score": {"precision": "int4"}}]})


def test_builtin_tiny_model_needs_no_config_dir():
    stage = ClipScoreStage(ClipScoreConfig(model=TINY_MODEL, pretrained=None, device="cpu"))
    stage.setup()
    assert stage.clip is not None and stage.clip.dtype == torch.float32
    stage.close()


def test_missing_checkpoint_and_unknown_model_are_named(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ClipScoreStage(ClipScoreConfig(model=TINY_MODEL, pretrained=str(missing))).setup()
    with pytest.raises(ValueError, match="no-such-model"):
        ClipScoreStage(ClipScoreConfig(model="no-such-model", pretrained=None)).setup()


def test_model_failure_raises_instead_of_dropping(checkpoint, monkeypatch):
    """A CUDA error is not bad data: process() raises and no image is dropped."""
    from curation.scoring.engine import EngineError

    stage = make_stage(checkpoint)
    stage.setup()

    def broken(*_a, **_k):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(stage.clip.model, "encode_image", broken)
    doc = doc_of([IMAGES[0].read_bytes()], ["a cat"])
    try:
        with pytest.raises(EngineError, match="out of memory"):
            stage.process([doc])
        assert doc.images[0].status == "ok" and doc.images[0].similarities is None
    finally:
        stage.close()

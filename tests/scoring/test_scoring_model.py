"""Random-weight models are the same in every load (actor, run, machine): seeded from
``init_seed`` without touching anyone else's random stream; low precision casts the
weights themselves."""

from __future__ import annotations

import torch

from curation.demo.corpus import DATA as DEMO
from curation.document import Document, ImageRecord, Provenance
from curation.scoring.model import TINY_MODEL, load_clip
from curation.scoring.stage import ClipScoreConfig, ClipScoreStage


def test_two_loads_give_bit_identical_weights_and_leave_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = load_clip(TINY_MODEL, None, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    torch.rand(7)  # whatever other code draws in between does not matter
    b = load_clip(TINY_MODEL, None, device="cpu")
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = load_clip(TINY_MODEL, None, device="cpu", init_seed=1)
    assert not torch.equal(sa["visual.conv1.weight"], c.model.state_dict()["visual.conv1.weight"])


def score_once() -> list[float]:
    stage = ClipScoreStage(ClipScoreConfig(model=TINY_MODEL, pretrained=None,
                                           device="cpu", batch_size=3))
    data = [p.read_bytes() for p in sorted((DEMO / "images").glob("*.jpg"))[:4]]
    doc = Document("d", "mmc4", None, ["a cat", "a rocket", "coffee"],
                   [ImageRecord(f"u{i}", status="ok", data=d) for i, d in enumerate(data)],
                   Provenance("f", 1))
    try:
        stage.process([doc])
    finally:
        stage.close()
    return [s for im in doc.images for s in im.similarities]


def test_two_separate_stages_give_bit_identical_scores():
    first = score_once()
    torch.manual_seed(99)  # a different global state must not change anything
    assert score_once() == first
    assert len(first) == 12


def test_low_precision_casts_weights_not_autocast():
    clip = load_clip(TINY_MODEL, None, device="cpu", precision="bf16")
    assert clip.dtype == torch.bfloat16
    assert clip.model.visual.conv1.weight.dtype == torch.bfloat16
    fp32 = load_clip(TINY_MODEL, None, device="cpu", precision="auto")
    assert fp32.dtype == torch.float32  # auto on the CPU
    # same random draw, then cast: bf16 weights are the rounded fp32 ones
    assert torch.equal(clip.model.visual.conv1.weight,
                       fp32.model.visual.conv1.weight.to(torch.bfloat16))

"""Load an open_clip model with its own preprocessing and tokenizer, once per worker.

``pretrained`` is an open_clip tag (downloaded from the hub where there is network),
a local checkpoint path (a state dict ``.pt``/``.bin``/``.safetensors``), or None for
random weights (tests, benchmarks), drawn on the CPU from a fixed seed so every actor,
run and machine (same torch build) gets the same ones. ``model_config_dir`` registers
extra architecture JSON files with ``open_clip.add_model_config`` so a pipeline can
name them.

The MMC4 default is OpenAI's ViT-L/14 (MMC4 README: "CLIP ViT-L/14"); in open_clip
that checkpoint was trained with QuickGELU, hence ``ViT-L-14-quickgelu``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import open_clip
import torch

DEFAULT_MODEL = "ViT-L-14-quickgelu"
DEFAULT_PRETRAINED = "openai"
TINY_MODEL = "tiny-test"

Precision = Literal["auto", "fp32", "bf16", "fp16"]
DeviceName = Literal["auto", "cpu", "cuda"]

# A CLIP small enough to build in ~0.03 s with random weights: tests and demos only.
TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 2},
}


def write_tiny_config(directory: str | Path, name: str = TINY_MODEL) -> Path:
    """Write the tiny architecture as ``DIR/NAME.json`` and register ``DIR``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(TINY_CONFIG, indent=2))
    open_clip.add_model_config(directory)
    return path


def ensure_model_config(model: str, config_dir: str | None) -> None:
    """Register ``config_dir`` (if any); the built-in tiny model needs no directory."""
    if config_dir:
        if not Path(config_dir).is_dir():
            raise FileNotFoundError(f"model_config_dir {config_dir}: no such directory")
        open_clip.add_model_config(config_dir)
    if model == TINY_MODEL and model not in open_clip.list_models():
        write_tiny_config(tempfile.mkdtemp(prefix="open_clip_tiny_"))
    if model not in open_clip.list_models() and ":" not in model:
        raise ValueError(f"open_clip has no model config {model!r} (give model_config_dir, "
                         f"or one of open_clip.list_models())")


def resolve_device(device: DeviceName) -> torch.device:
    """``auto`` is cuda when this worker sees a GPU (called in setup, on the worker).
    A cuda device always carries its index (the first GPU Ray made visible), so
    threads can select it (``torch.cuda.set_device`` refuses a bare "cuda")."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device: cuda was asked for but this worker sees no GPU")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(device)


def resolve_dtype(precision: Precision, device: torch.device) -> torch.dtype:
    """The weights' dtype. ``auto``: bf16 on GPUs that have it, else fp16; fp32 on CPU
    (bf16 matmuls are slower than fp32 on most CPUs). Low precision means the weights
    themselves are cast (open_clip's ``bf16``/``fp16``: linear, conv and attention
    weights in low precision, LayerNorm in fp32), not fp32 weights under autocast,
    which re-casts every weight on every forward."""
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        return torch.float32
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


_OPEN_CLIP_PRECISION = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


class _NoWeightsNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Random weights that are the same in every actor, run and machine: the CPU
    generator is seeded inside a fork of its state, so other code's random stream is
    left as it was (CUDA generators are not touched: weights are built on the CPU)."""
    # open_clip warns on every worker that a model without ``pretrained`` has random
    # weights: here that is what the config asked for, not news
    notice = _NoWeightsNotice()
    logging.getLogger().addFilter(notice)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            yield
    finally:
        logging.getLogger().removeFilter(notice)


@dataclass
class ClipModel:
    """A loaded CLIP: the network, its eval transform and tokenizer, where it runs."""

    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[..., torch.Tensor]
    device: torch.device
    dtype: torch.dtype  # of the weights and of the image input
    name: str

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """No autograd bookkeeping (thread-local: enter it on the thread that runs)."""
        with torch.inference_mode():
            yield


def load_clip(model: str = DEFAULT_MODEL, pretrained: str | None = DEFAULT_PRETRAINED,
              model_config_dir: str | None = None, device: DeviceName = "auto",
              precision: Precision = "auto", init_seed: int = 0) -> ClipModel:
    """Build the model, its eval preprocessing and tokenizer on this worker. Weights
    are built on the CPU (random ones from ``init_seed``), cast, then moved."""
    ensure_model_config(model, model_config_dir)
    dev = resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    if pretrained and ("/" in pretrained or Path(pretrained).suffix) \
            and not Path(pretrained).is_file():
        raise FileNotFoundError(f"pretrained checkpoint {pretrained}: no such file")
    build = contextlib.nullcontext() if pretrained else seeded_init(init_seed)
    with build:
        net, _, preprocess = open_clip.create_model_and_transforms(
            model, pretrained=pretrained or None, precision=_OPEN_CLIP_PRECISION[dtype],
            device="cpu")
    net = net.to(dev).eval()
    return ClipModel(model=net, preprocess=preprocess,
                     tokenizer=open_clip.get_tokenizer(model), device=dev, dtype=dtype,
                     name=model)

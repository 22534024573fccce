"""Image decode + CLIP preprocessing on CPU threads, a few batches ahead of the model.

Why threads inside the scoring actor rather than a separate ``clip_preprocess``
stage: a preprocessed 224 px float tensor is ~600 KB, 10-20x the JPEG it came from,
so shipping tensors between Ray operations would multiply object-store traffic and
put tensors into ``Document`` records that are written to disk. Pillow decode/resize
and torch's tensor ops release the GIL, so a pool of ``decode_threads`` (matched to
the actor's ``num_cpus``) decodes batch k+1.. while the model runs batch k.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

import torch
from PIL import Image

UNDECODABLE = "clip_undecodable"


def prepare_image(data: bytes, preprocess: Callable) -> torch.Tensor:
    """Encoded bytes -> the model's input tensor (RGB, resized, normalized)."""
    with Image.open(io.BytesIO(data)) as img:
        return preprocess(img.convert("RGB"))


@dataclass
class PreparedBatch:
    """Input tensors for ``indices`` (positions in the caller's list); ``failed`` maps
    positions whose bytes did not decode to the error text."""

    indices: list[int]
    pixels: torch.Tensor | None
    failed: dict[int, str] = field(default_factory=dict)


def _safe(data: bytes, preprocess: Callable) -> torch.Tensor | str:
    try:
        return prepare_image(data, preprocess)
    except Exception as exc:  # noqa: BLE001 - any decoder error is a reason, not a crash
        return f"{type(exc).__name__}: {exc}"


def prepared_batches(datas: Sequence[bytes], preprocess: Callable, batch_size: int,
                     pool: Executor, prefetch: int = 2,
                     pin_memory: bool = False) -> Iterator[PreparedBatch]:
    """Yield batches in order while up to ``prefetch`` further batches decode."""
    starts = deque(range(0, len(datas), batch_size))
    inflight: deque[tuple[int, list[Future]]] = deque()

    def submit() -> None:
        start = starts.popleft()
        chunk = datas[start:start + batch_size]
        inflight.append((start, [pool.submit(_safe, d, preprocess) for d in chunk]))

    while starts and len(inflight) <= prefetch:
        submit()
    while inflight:
        start, futures = inflight.popleft()
        if starts:
            submit()
        yield _collect(start, [f.result() for f in futures], pin_memory)


def _collect(start: int, results: list[torch.Tensor | str], pin: bool) -> PreparedBatch:
    batch = PreparedBatch(indices=[], pixels=None)
    tensors = []
    for offset, res in enumerate(results):
        if isinstance(res, str):
            batch.failed[start + offset] = res
        else:
            batch.indices.append(start + offset)
            tensors.append(res)
    if tensors:
        pixels = torch.stack(tensors)
        batch.pixels = pixels.pin_memory() if pin else pixels
    return batch

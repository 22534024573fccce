"""One rank of the multi-process DDP test (spawned by test_bridge_ddp.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist

from trainer_bridge import ResumableLoader, ShardDataset


def collate_keys(batch):
    return {"__key__": [s["__key__"] for s in batch],
            "__worker__": [s["__worker__"] for s in batch]}


def _loader(root: str, num_workers: int) -> ResumableLoader:
    ds = ShardDataset(root, seed=5, shuffle_buffer=4)  # rank and world from torch.distributed
    # torchrun starts ranks as fresh programs (workers fork); mp.spawn's children would
    # spawn their workers, re-importing torch each time: fork, as under torchrun
    context = "fork" if num_workers else None
    return ResumableLoader(ds, batch_size=2, num_workers=num_workers, collate_fn=collate_keys,
                           multiprocessing_context=context)


def _run(root: str, num_workers: int, stop: int | None) -> tuple[list, int]:
    """Batches of one epoch; with ``stop``, stop there, save, resume in a new loader."""
    loader = _loader(root, num_workers)
    out = []
    for batch in loader:
        dist.all_reduce(torch.ones(1))  # every rank steps together or this hangs
        out.append(batch["__key__"])
        if stop is not None and len(out) == stop:
            break
    if stop is not None:
        state = json.loads(json.dumps(loader.state_dict()))  # as a checkpoint stores it
        resumed = _loader(root, num_workers)
        resumed.load_state_dict(state)
        for batch in resumed:
            dist.all_reduce(torch.ones(1))
            out.append(batch["__key__"])
    return out, len(loader)


def rank_main(rank: int, world: int, port: int, root: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        result = {}
        for num_workers in (0, 2):
            full, length = _run(root, num_workers, None)
            runs = {str(stop): _run(root, num_workers, stop)[0] for stop in (3,)}
            result[str(num_workers)] = {"full": full, "len": length, "resumed": runs}
        gathered: list = [None] * world
        dist.all_gather_object(gathered, result)
        if rank == 0:
            Path(out_dir, "result.json").write_text(json.dumps(gathered))
    finally:
        dist.destroy_process_group()

"""Real multi-process DDP (torch.distributed, gloo on 127.0.0.1, world size 2) with
DataLoader workers: equal steps per rank, disjoint-or-padded key sets covering the
data, and a resume from a saved state that continues the global batch order exactly."""

from __future__ import annotations

import json
import socket
from collections import Counter

import torch.multiprocessing as mp
from bridge_builder import TOTAL
from ddp_worker import rank_main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_ranks_workers_resume_exact(bridge_output, tmp_path):
    root, keys = bridge_output
    mp.spawn(rank_main, args=(2, free_port(), str(root), str(tmp_path)), nprocs=2, join=True)
    ranks = json.loads((tmp_path / "result.json").read_text())
    for workers in ("0", "2"):
        runs = [r[workers] for r in ranks]
        steps = [len(r["full"]) for r in runs]
        assert steps[0] == steps[1] == runs[0]["len"] == runs[1]["len"]
        flat = Counter(k for r in runs for b in r["full"] for k in b)
        assert set(flat) == set(keys) and sum(flat.values()) == TOTAL + 1  # pad: one twice
        for r in runs:
            for stop, resumed in r["resumed"].items():
                assert resumed == r["full"], f"{workers} workers, resumed after {stop}"
    assert ranks[0]["0"]["full"] != ranks[0]["2"]["full"]  # streams differ with workers

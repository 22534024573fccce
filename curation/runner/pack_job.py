"""Pack the final pass's pieces into shards of the writer's size, on Ray.

The plan is computed once in a Ray task (a walk over the pieces' sample lengths in
unit order, one unit in memory at a time) and staged as ``_work/shard_plan.parquet``;
shards are assembled in parallel tasks, each writing its tar then its manifest part
(the marker). A resumed run reuses the plan and skips shards that have a manifest
part; parts and tars beyond the plan (left by an earlier, larger run) are removed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.location import Location
from shards.layout import MANIFEST, SHARDS
from shards.pack import PLAN_SCHEMA, ShardLimits, assemble_shard, group_plan, plan_shards

PLAN = "shard_plan.parquet"


@ray.remote(num_cpus=1)
def _plan_task(pieces: Location, work: Location, limits: ShardLimits) -> int:
    def lengths():
        for name in pieces.list(".parquet"):
            table = pieces.read_parquet(name, columns=["length"])
            yield name.removesuffix(".parquet"), table["length"].to_numpy()

    rows = list(plan_shards(lengths(), limits))
    work.write_parquet(PLAN, pa.Table.from_pylist(rows, schema=PLAN_SCHEMA))
    return (rows[-1]["shard"] + 1) if rows else 0


def _assemble(batch: dict, pieces: Location, output: Location) -> dict:
    for index, units, firsts, counts in zip(batch["shard"], batch["units"],
                                            batch["firsts"], batch["counts"]):
        assemble_shard(int(index), list(zip(units, firsts, counts)), pieces, output)
    return {"shard": np.asarray(batch["shard"])}


def pack_shards(output: Location, work: Location, limits: ShardLimits) -> int:
    """Write every planned shard that is not written yet; returns the shard count."""
    pieces = work.child("pieces")
    if not work.exists(PLAN):
        ray.get(_plan_task.remote(pieces, work, limits))
    plan = work.read_parquet(PLAN)  # one row per (shard, unit) range: O(shards)
    n_shards = int(plan["shard"][-1].as_py()) + 1 if plan.num_rows else 0
    done = {int(n.removesuffix(".parquet")) for n in output.list(".parquet", MANIFEST)}
    _remove_beyond(output, n_shards)
    items = [{"shard": index, "units": [r[0] for r in ranges],
              "firsts": [r[1] for r in ranges], "counts": [r[2] for r in ranges]}
             for index, ranges in group_plan(plan.to_pylist()) if index not in done]
    if items:
        blocks = max(1, min(len(items), 4 * int(ray.cluster_resources().get("CPU", 1))))
        ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            _assemble, batch_size=1, fn_kwargs={"pieces": pieces, "output": output},
        ).materialize()
    return n_shards


def _remove_beyond(output: Location, n_shards: int) -> None:
    stale_parts = [n for n in output.list(".parquet", MANIFEST)
                   if int(n.removesuffix(".parquet")) >= n_shards]
    output.child(MANIFEST).remove(stale_parts)
    stale_tars = [n for n in output.list(".tar", SHARDS)
                  if n.removesuffix(".tar").isdigit() and int(n[:-4]) >= n_shards]
    output.child(SHARDS).remove(stale_tars)

"""Pack the final pass's pieces into shards of the writer's size while the pass runs.

The driver plans (``ShardPlanner``: a greedy cut over the units' sample lengths in
unit order, which the final pass hands back with each unit's small report row) and
an assembler actor writes each shard as soon as it is full; a unit's piece is deleted once
every shard holding its samples is written. Pieces therefore live for seconds, not
for the whole pass: on one machine they are dropped from the page cache before they
are ever written back to disk, and the shards are the only bytes the disk takes.

Resume: a shard's plan (``_work/shard_plans/NNNNNN.json``, its ranges) is written, in
shard order, before its assembly starts; the manifest part is the shard's marker. A
re-run reassembles planned shards without a manifest part, continues the cut after
the last planned range (reading the lengths of units finished earlier from their
pieces' index), and removes shards of an earlier attempt that no plan names.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.location import Location
from shards.layout import MANIFEST, SHARDS, shard_name
from shards.pack import Ranges, ShardLimits, ShardPlanner, assemble_shard

PLANS = "shard_plans"
# finished units waiting behind one whose file's unit count is unknown, before the
# packer looks for that file's marker (once per unit that finishes while it waits)
RESOLVE_BACKLOG = 8


@ray.remote(num_cpus=0, max_restarts=3, max_task_retries=3, max_concurrency=4)
class ShardAssembler:
    """Writes shards from piece ranges. An actor, not a task per shard: Ray ends idle
    workers beyond one per CPU, so a task per shard beside the pass's own tasks would
    start (and import into) a new process for nearly every shard. No CPU reserved: the
    copy runs inside the kernel, beside the pass, which holds every CPU until it ends."""

    def assemble(self, index: int, ranges: Ranges, pieces: Location,
                 output: Location) -> int:
        assemble_shard(index, ranges, pieces, output)
        return index


def assemblers() -> list[Any]:
    """One assembler per node, spread; shared by the runs of one driver process (a
    notebook, a test session), which would otherwise start a process per run."""
    nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
    job = ray.get_runtime_context().get_job_id()
    return [ShardAssembler.options(  # type: ignore[attr-defined]
        name=f"curate-shard-assembler-{job}-{i}", get_if_exists=True,
        scheduling_strategy="SPREAD").remote() for i in range(nodes)]


class PackFailed(RuntimeError):
    """A shard could not be written (after Ray's retries): names the shard."""


@dataclass
class UnitOrder:
    """The final pass's units in output order, as far as they are known yet: a list
    (a pass over staged units), or input files whose unit counts arrive with their
    last unit (``file_units``; a pass reading the input files)."""

    listed: list[str] | None = None
    files: int = 0
    file_units: dict[int, int] = field(default_factory=dict)
    markers: Location | None = None  # the input files' markers (their unit lists)

    def resolve(self, unit: str) -> bool:
        """Learn the unit count of ``unit``'s file from its marker, if it is written
        (a file that yielded no unit at all, or whose last unit a resumed run skipped,
        never reports its end with a unit). True when the count is now known."""
        f = int(unit.split("-")[0])
        if self.listed is not None or self.markers is None or f in self.file_units:
            return False
        try:
            self.file_units[f] = len(self.markers.read_json(f"{f:05d}.done.json")["units"])
        except FileNotFoundError:
            return False
        return True

    def after(self, unit: str | None) -> str | None:
        """The unit that follows ``unit`` (``None``: the first), or ``None`` at the end;
        a unit that may not exist yet (its file's count unknown) is a candidate the
        packer waits for."""
        if self.listed is not None:
            i = 0 if unit is None else bisect_right(self.listed, unit)
            return self.listed[i] if i < len(self.listed) else None
        f, c = (0, -1) if unit is None else map(int, unit.split("-"))
        count = self.file_units.get(f)
        if count is None or c + 1 < count:
            return f"{f:05d}-{c + 1:05d}"
        for g in range(f + 1, self.files):
            if self.file_units.get(g) != 0:
                return f"{g:05d}-00000"
        return None


class ShardPacker:
    """Plans shards as units finish, has the assembler actors write full ones (a
    bounded window in flight), deletes pieces whose shards are all written. Driver state: the open
    shard, the units finished out of order, the shards in flight."""

    def __init__(self, output: Location, work: Location, limits: ShardLimits,
                 max_in_flight: int = 8) -> None:
        self.output, self.pieces, self.plans = output, work.child("pieces"), work.child(PLANS)
        self.planner = ShardPlanner(limits)
        self.order = UnitOrder(listed=[])
        self.max_in_flight = max_in_flight
        self.ready: dict[str, np.ndarray | None] = {}  # finished, not planned (None: on disk)
        self.last_done: str | None = None  # the last unit planned whole
        self.partial: tuple[str, int] | None = None  # (unit, row) a resumed plan stopped at
        # the last unit the written plans name, and whether they name all its rows
        self.persisted: tuple[str, bool] | None = None
        self.empty: list[str] = []  # units that kept nothing, until a plan passes them
        self.in_flight: dict[Any, tuple[int, set[str]]] = {}
        self.holding: Counter[str] = Counter()  # unit -> its shards in flight
        self.assemblers: list[Any] = []
        self.written = 0
        self.streamed = 0  # shards written before the pass ended
        self._resume()

    # -- what the pass tells ------------------------------------------------------------
    def expect(self, order: UnitOrder, finished: set[str] | list[str]) -> None:
        """The pass's unit order and the units finished before it started."""
        self.order = order
        for unit in finished:
            if not self._planned(unit):
                self.ready.setdefault(unit, None)
        self._advance()

    def unit_done(self, unit: str, lengths: np.ndarray | None, file_end: bool) -> None:
        self.ready[unit] = lengths
        if file_end and self.order.listed is None:
            f, c = map(int, unit.split("-"))
            self.order.file_units[f] = c + 1
        self._advance()
        self._collect(block=False)

    def finish(self, units: list[str]) -> int:
        """Every unit of the pass is finished (``units``, sorted): plan the rest, write
        the last shard, wait for all; returns the number of shards."""
        self._collect(block=False)
        self.streamed = self.written
        self.expect(UnitOrder(listed=units), units)
        missing = self._next()
        if missing is not None:
            raise PackFailed(f"{self.pieces.uri}: unit {missing} has no piece to pack")
        self._submit(self.planner.finish(), None, None)
        self.wait_all()
        _remove_beyond(self.output, self.planner.shard)
        return self.planner.shard

    def wait_all(self) -> None:
        """Until every shard launched so far is written (its pieces then released)."""
        while self.in_flight:
            self._collect(block=True)

    # -- planning -------------------------------------------------------------------------
    def _next(self) -> str | None:
        return self.partial[0] if self.partial else self.order.after(self.last_done)

    def _planned(self, unit: str) -> bool:
        if self.partial:
            return unit < self.partial[0]
        return self.last_done is not None and unit <= self.last_done

    def _advance(self) -> None:
        while True:
            unit = self._next()
            if unit is not None and unit not in self.ready and len(
                    self.ready) >= RESOLVE_BACKLOG and self.order.resolve(unit):
                continue
            if unit is None or unit not in self.ready:
                return
            lengths = self.ready.pop(unit)
            if lengths is None:
                lengths = self.pieces.read_parquet(f"{unit}.parquet",
                                                   columns=["length"])["length"].to_numpy()
            start = self.partial[1] if self.partial else 0
            closed = self.planner.add(unit, lengths, start)
            self.last_done, self.partial = unit, None
            self._submit(closed, unit, len(lengths))
            if not len(lengths):
                self.empty.append(unit)
            self._release([unit])

    def _submit(self, shards: list[tuple[int, Ranges]], unit: str | None,
                rows: int | None) -> None:
        self._hold(shards)  # before any wait below can free (and delete) their pieces
        for index, ranges in shards:
            last, first, count = ranges[-1]
            whole = last != unit or first + count == rows
            # the plan first, in shard order: a resumed run continues after it
            self.plans.write_json(f"{index:06d}.json", {
                "shard": index, "ranges": ranges, "last_unit_whole": whole})
            self.persisted = (last, whole)
            self._launch(index, ranges)

    def _hold(self, shards: list[tuple[int, Ranges]]) -> None:
        for _, ranges in shards:
            self.holding.update({unit for unit, _, _ in ranges})

    def _launch(self, index: int, ranges: Ranges) -> None:
        """Start a shard's assembly (its units already held), waiting while the window
        is full."""
        while len(self.in_flight) >= self.max_in_flight:
            self._collect(block=True)
        if not self.assemblers:
            self.assemblers = assemblers()
        actor = self.assemblers[index % len(self.assemblers)]
        ref = actor.assemble.options(retry_exceptions=[OSError]).remote(
            index, ranges, self.pieces, self.output)
        self.in_flight[ref] = (index, {unit for unit, _, _ in ranges})

    def _collect(self, block: bool) -> None:
        if not self.in_flight:
            return
        done, _ = ray.wait(list(self.in_flight), num_returns=1 if block else
                           len(self.in_flight), timeout=None if block else 0)
        freed: list[str] = []
        for ref in done:
            index, units = self.in_flight.pop(ref)
            try:
                ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - failed for good, after retries
                raise PackFailed(f"packing {shard_name(index)} into {self.output.uri}: "
                                 f"{type(exc).__name__}: {exc}") from exc
            self.written += 1
            self.holding.subtract(units)
            freed.extend(units)
        self._release(freed)

    def _release(self, units: list[str]) -> None:
        """Delete the pieces of units whose shards are all written, once the written
        plans cover them whole (a resumed run plans on from there without them; a unit
        that kept nothing is covered when a later unit's rows are)."""
        if self.persisted is None:
            return
        through, whole = self.persisted
        open_units = self.planner.open_units()
        gone = sorted(u for u in set(units) | set(self.empty) if self.holding[u] <= 0
                      and u not in open_units and (u < through or (u == through and whole)))
        self.empty = [u for u in self.empty if u not in gone]
        for unit in gone:
            del self.holding[unit]
        self.pieces.remove([f"{u}.{ext}" for u in gone for ext in ("tar", "parquet")])

    # -- resume ---------------------------------------------------------------------------
    def _resume(self) -> None:
        planned = [int(n.removesuffix(".json")) for n in self.plans.list(".json")]
        written = {int(n.removesuffix(".parquet"))
                   for n in self.output.list(".parquet", MANIFEST)}
        _remove_stale(self.output, written - set(planned))
        if not planned:
            return
        if planned != list(range(len(planned))):
            raise PackFailed(f"{self.plans.uri}: shard plans are not contiguous; run again "
                             "with --overwrite")
        last = self.plans.read_json(f"{planned[-1]:06d}.json")
        unit, first, count = last["ranges"][-1]
        self.planner.shard = planned[-1] + 1
        self.persisted = (unit, last["last_unit_whole"])
        if last["last_unit_whole"]:
            self.last_done = unit
        else:
            self.partial = (unit, first + count)
        self.written = len(written & set(planned))
        unwritten = [(index, [tuple(r) for r in self.plans.read_json(
            f"{index:06d}.json")["ranges"]]) for index in planned if index not in written]
        self._hold(unwritten)  # type: ignore[arg-type]
        for index, ranges in unwritten:  # planned before the cut, never written
            self._launch(index, ranges)  # type: ignore[arg-type]


def _remove_stale(output: Location, shards: set[int]) -> None:
    """Shards an earlier attempt wrote that no plan names: not this run's."""
    output.child(MANIFEST).remove([f"{i:06d}.parquet" for i in sorted(shards)])
    output.child(SHARDS).remove([shard_name(i) for i in sorted(shards)])


def _remove_beyond(output: Location, n_shards: int) -> None:
    stale_parts = [n for n in output.list(".parquet", MANIFEST)
                   if int(n.removesuffix(".parquet")) >= n_shards]
    output.child(MANIFEST).remove(stale_parts)
    stale_tars = [n for n in output.list(".tar", SHARDS)
                  if n.removesuffix(".tar").isdigit() and int(n[:-4]) >= n_shards]
    output.child(SHARDS).remove(stale_tars)

"""The shard packer that writes shards while the final pass runs: the same shards as
a cut over all pieces at the end, whatever order units finish in; pieces deleted as
soon as their shards are written (and not before); a packer stopped half-way and
started again finishes without rewriting a written shard."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from curation.location import Location
from curation.runner.pack_job import PLANS, ShardPacker, UnitOrder
from shards.layout import MANIFEST, SHARDS
from shards.pack import ShardLimits, ShardPlanner, cut_shards
from shards.writer import write_unit
from tests.shards.test_shards_writer import make_doc

LIMITS = ShardLimits(max_samples=4)


def units_of(n_files: int = 4, per_file: int = 3) -> dict[str, int]:
    """unit -> kept documents; file 1 has no unit at all, unit 2-1 keeps nothing."""
    units = {}
    for f in range(n_files):
        if f == 1:
            continue
        for c in range(per_file):
            units[f"{f:05d}-{c:05d}"] = 0 if (f, c) == (2, 1) else 1 + (3 * f + c) % 4
    return units


def write_pieces(root, units: dict[str, int]) -> tuple[Location, Location]:
    out, work = Location.of(str(root / "out")), Location.of(str(root / "out" / "_work"))
    for i, (unit, kept) in enumerate(sorted(units.items())):
        docs = [make_doc(100 * i + j) for j in range(kept)]
        write_unit(docs, unit, out, work.child("pieces"))
    return out, work


def lengths(work: Location, unit: str) -> np.ndarray:
    return work.child("pieces").read_parquet(f"{unit}.parquet")["length"].to_numpy()


def shard_hashes(out: Location) -> dict[str, str]:
    return {n: hashlib.sha256(out.child(SHARDS).read_bytes(n)).hexdigest()
            for n in out.list(".tar", SHARDS)}


def test_the_planner_cuts_a_unit_at_a_time_into_full_shards():
    rng = np.random.default_rng(3)
    for _ in range(300):
        limits = ShardLimits(int(rng.integers(1, 9)), int(rng.integers(100, 3000)))
        pieces = [(f"u{k}", rng.integers(1, 900, int(rng.integers(0, 12))))
                  for k in range(int(rng.integers(1, 7)))]
        planner, streamed = ShardPlanner(limits), []
        for unit, lens in pieces:
            closed = planner.add(unit, lens)
            # a shard closes as soon as it is full, not when the next unit arrives
            assert planner.samples < limits.max_samples
            streamed += closed
        streamed += planner.finish()
        assert streamed == list(cut_shards(pieces, limits))
        assert [s for s, _ in streamed] == list(range(len(streamed)))
        # every row once, in order; every shard but the last full (or at the byte limit)
        flat = [(u, i) for _, ranges in streamed for u, f, c in ranges
                for i in range(f, f + c)]
        assert flat == [(u, i) for u, lens in pieces for i in range(len(lens))]
        sizes = {u: lens for u, lens in pieces}
        for s, ranges in streamed[:-1]:
            samples = sum(c for _, _, c in ranges)
            nbytes = sum(int(sizes[u][f:f + c].sum()) for u, f, c in ranges)
            nxt = streamed[s + 1][1][0]
            assert samples == limits.max_samples or \
                nbytes + int(sizes[nxt[0]][nxt[1]]) > limits.max_bytes
        for _, ranges in streamed:  # within both limits (one oversized sample alone)
            samples = sum(c for _, _, c in ranges)
            nbytes = sum(int(sizes[u][f:f + c].sum()) for u, f, c in ranges)
            assert samples <= limits.max_samples
            assert nbytes <= limits.max_bytes or samples == 1


@pytest.fixture
def reference(ray_session, tmp_path):
    """Shards packed with every unit finished before packing starts."""
    units = units_of()
    out, work = write_pieces(tmp_path / "ref", units)
    packer = ShardPacker(out, work, LIMITS)
    n = packer.finish(sorted(units))
    return units, n, shard_hashes(out)


def test_units_finishing_out_of_order_give_the_same_shards(reference, tmp_path):
    units, n_ref, ref = reference
    out, work = write_pieces(tmp_path, units)
    order = sorted(units)
    random.Random(7).shuffle(order)
    packer = ShardPacker(out, work, LIMITS)
    packer.expect(UnitOrder(files=4), set())
    last = {u.split("-")[0]: u for u in sorted(units)}
    for unit in order:
        packer.unit_done(unit, lengths(work, unit), last[unit.split("-")[0]] == unit)
    assert packer.finish(sorted(units)) == n_ref
    assert shard_hashes(out) == ref
    assert work.child("pieces").list() == []  # every piece deleted once packed


def test_a_piece_lives_until_every_shard_holding_it_is_written(ray_session, tmp_path):
    units = units_of()
    out, work = write_pieces(tmp_path, units)
    packer = ShardPacker(out, work, LIMITS)
    packer.expect(UnitOrder(listed=sorted(units)), set())
    for unit in sorted(units)[:4]:
        packer.unit_done(unit, lengths(work, unit), False)
        packer.wait_all()
        left = {n.removesuffix(".tar") for n in work.child("pieces").list(".tar")}
        # the open shard's units keep their pieces; nothing later was touched
        assert packer.planner.open_units() <= left
        assert set(sorted(units)[4:]) <= left
        for gone in set(units) - left:
            assert gone <= unit and gone not in packer.planner.open_units()
    assert packer.written >= 1


def test_a_packer_stopped_half_way_resumes_without_rewriting(reference, tmp_path):
    units, n_ref, ref = reference
    out, work = write_pieces(tmp_path, units)
    first = ShardPacker(out, work, LIMITS)
    first.expect(UnitOrder(listed=sorted(units)), set())
    for unit in sorted(units)[:3]:
        first.unit_done(unit, lengths(work, unit), False)
    first.wait_all()
    written = len(out.list(".parquet", MANIFEST))
    # then the driver dies after writing plans, before their shards are written
    first._launch = lambda index, ranges: None  # type: ignore[method-assign]
    for unit in sorted(units)[3:6]:
        first.unit_done(unit, lengths(work, unit), False)
    assert written >= 1 and len(work.child(PLANS).list(".json")) > written
    # and an earlier, larger attempt left a shard no plan names
    out.child(SHARDS).write_bytes("000099.tar", b"stale")
    out.child(MANIFEST).write_bytes("000099.parquet", b"stale")
    kept = {n: out.child(MANIFEST).fs.modified(out.child(MANIFEST).path(n))
            for n in out.list(".parquet", MANIFEST) if n not in ("000099.parquet",)}

    again = ShardPacker(out, work, LIMITS)
    again.expect(UnitOrder(listed=sorted(units)), set(units))
    assert again.finish(sorted(units)) == n_ref
    assert shard_hashes(out) == ref
    for name, when in kept.items():  # written shards were not written again
        assert out.child(MANIFEST).fs.modified(out.child(MANIFEST).path(name)) == when


def test_a_file_without_units_is_learned_from_its_marker(ray_session, tmp_path):
    """File 1 yields no unit (all its records quarantined): the packer finds its
    marker once units queue up behind it, and packs on during the pass."""
    units = units_of(n_files=6)
    out, work = write_pieces(tmp_path, units)
    ingest = work.child("ingest")
    ingest.write_json("00001.done.json", {"units": []})
    packer = ShardPacker(out, work, LIMITS)
    packer.expect(UnitOrder(files=6, markers=ingest), set())
    ordered = sorted(units)
    for unit in ordered:
        last = unit == max(u for u in ordered if u[:5] == unit[:5])
        packer.unit_done(unit, lengths(work, unit), last)
    assert packer.ready == {}  # nothing left waiting for the end of the pass
    assert packer.last_done == ordered[-1]
    n = packer.finish(ordered)

    clean = tmp_path / "clean"
    out2, work2 = write_pieces(clean, units)
    assert ShardPacker(out2, work2, LIMITS).finish(ordered) == n
    assert shard_hashes(out) == shard_hashes(out2)

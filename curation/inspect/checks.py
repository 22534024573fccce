"""Consistency checks: per-unit identities, the manifest against the shard index and
the unit stats, the drop tables against the stats, the run totals against the sum of
the units, shard files against the index. Each failure is one line naming the file
it came from; the numbers come from the streaming passes of ``scan.py``."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from shards.pack import TAR_END as PACK_END

if TYPE_CHECKING:
    from curation.inspect.load import OutputView
    from curation.inspect.scan import DropScan, ManifestScan, UnitScan

RUN_KEYS = ("documents_in", "documents_written", "images_in", "images_written",
            "bytes_written", "documents_dropped", "image_status", "images_dropped",
            "sources", "shards", "units", "quarantined", "manifest_rows")
TAR_END = len(PACK_END)  # two zero blocks close every shard
SHOWN = 5  # mismatches listed per check before "... and N more"


def _n(counts: dict | None) -> int:
    return sum(int(v) for v in (counts or {}).values())


def check_unit(st: dict, where: str) -> list[str]:
    """Identities that hold inside one stats/UNIT.json (v1 files also list shards)."""
    g = lambda k: int(st.get(k) or 0)  # noqa: E731
    ok = int((st.get("image_status") or {}).get("ok", 0))
    rules = [
        ("documents_in", g("documents_in"),
         "documents_written + sum(documents_dropped)",
         g("documents_written") + _n(st.get("documents_dropped"))),
        ("documents_in", g("documents_in"), "sum(sources)", _n(st.get("sources"))),
        ("images_in", g("images_in"), "sum(image_status)", _n(st.get("image_status"))),
        ("sum(images_dropped)", _n(st.get("images_dropped")), "images_in - image_status.ok",
         g("images_in") - ok),
    ]
    if "shards" in st:
        shards = st.get("shards") or []
        rules += [(k, g(k), f"sum(shards.{s})", sum(int(x.get(s, 0)) for x in shards))
                  for k, s in (("documents_written", "samples"),
                               ("images_written", "images"), ("bytes_written", "bytes"))]
    errors = [f"{where}: {a} = {x} but {b} = {y}" for a, x, b, y in rules if x != y]
    if g("images_written") > ok:
        errors.append(f"{where}: images_written = {g('images_written')} exceeds "
                      f"image_status.ok = {ok}")
    return errors


def _limit(errors: list[str]) -> list[str]:
    if len(errors) <= SHOWN:
        return errors
    return errors[:SHOWN] + [f"... and {len(errors) - SHOWN} more like these"]


def check_units_against(units: UnitScan, per_unit: Counter, what: str,
                        where: str) -> list[str]:
    """Rows per unit in a table (manifest or drops) against the unit stats."""
    want = units.written if what == "written" else units.dropped
    errors = []
    for unit in sorted(set(want) | set(per_unit)):
        got = int(per_unit.get(unit, 0))
        if unit not in want:
            errors.append(f"{where}: {got} row(s) of unit {unit}, which has no "
                          f"stats/{unit}.json")
        elif got != want[unit]:
            errors.append(f"{where}: {got} row(s) of unit {unit} but stats/{unit}.json "
                          f"says {want[unit]} documents {what}")
    return _limit(errors)


def check_manifest(view: OutputView, units: UnitScan, m: ManifestScan) -> list[str]:
    """The manifest against the unit stats (totals and per unit)."""
    src = view.sources.get("manifest", "manifest")
    t = units.totals
    errors = [f"{src}: {got} {what} but the unit stats say {want}"
              for what, got, want in (("rows", m.rows, t["documents_written"]),
                                      ("images", m.images, t["images_written"]),
                                      ("payload bytes", m.bytes, t["bytes_written"]))
              if got != want and (what != "payload bytes" or m.rows)]
    return errors + m.errors + check_units_against(units, m.per_unit, "written", src)


def check_shards(view: OutputView, units: UnitScan, m: ManifestScan
                 ) -> tuple[list[str], list[str]]:
    """Shard index (shards.parquet, or v1's per-unit lists) against the manifest, and
    every shard it lists against the one listing of shards/."""
    errors: list[str] = []
    warnings: list[str] = []
    if view.layout == "v1":
        index = {name: {"samples": s["samples"], "images": s["images"], "bytes": s["bytes"]}
                 for name, s in units.shard_lists.items()}
        got = {name: {"samples": a.samples, "images": a.images, "bytes": a.bytes}
               for name, a in m.shards.items()}
        where = "stats/*.json shard lists"
    elif view.shard_index is not None:
        index = {str(r["shard"]): {k: int(r[k]) for k in ("samples", "images", "bytes")}
                 for r in view.shard_index}
        got = {name: {"samples": a.samples, "images": a.images,
                      "bytes": a.span + TAR_END} for name, a in m.shards.items()}
        where = "shards.parquet"
    else:
        index, got, where = None, {}, ""
        warnings.append("shards.parquet missing: run not finished? (shards checked "
                        "against the manifest parts only)")
    if index is not None:
        for name in sorted(set(index) | set(got)):
            if name not in got:
                errors.append(f"{where}: shard {name} has no manifest rows")
            elif name not in index:
                errors.append(f"{view.sources.get('manifest')}: shard {name} is in the "
                              f"manifest but not in {where}")
            else:
                errors += [f"shard {name}: {where} says {k} = {index[name][k]} but the "
                           f"manifest gives {got[name][k]}"
                           for k in ("samples", "images", "bytes")
                           if index[name][k] != got[name][k]]
    listed = set(index) if index is not None else set(m.shards)
    errors += _limit([f"shards/{name}: in {where or 'the manifest'} but the file is missing"
                      for name in sorted(listed - set(view.shard_sizes))])
    if view.layout == "v2":
        errors += _limit([
            f"shards/{name}: {size} bytes but its samples end at byte "
            f"{m.shards[name].span + TAR_END}" for name, size in
            sorted(view.shard_sizes.items())
            if name in m.shards and m.shards[name].span + TAR_END != size])
    stray = sorted(set(view.shard_sizes) - listed)
    if stray:
        msg = (f"shards/: {len(stray)} tar file(s) in no manifest or index "
               f"(stale?): {', '.join(stray[:SHOWN])}")
        (errors if view.run_stats is not None else warnings).append(msg)
    return _limit(errors), warnings


def check_drops(view: OutputView, units: UnitScan, d: DropScan) -> list[str]:
    want = Counter({k: int(v) for k, v in units.totals["documents_dropped"].items()})
    if not view.drops_names:
        return [f"{view.root}: no drop table but the stats count "
                f"{sum(want.values())} dropped documents"] if want else []
    errors = []
    if d.reasons != want:
        diff = sorted(k for k in set(d.reasons) | set(want) if d.reasons[k] != want[k])
        errors.append(f"{d.source}: {sum(d.reasons.values())} dropped documents; per stats "
                      f"{sum(want.values())}; differs at " +
                      ", ".join(f"{k} ({d.reasons[k]} vs {want[k]})" for k in diff[:5]))
    if d.per_unit:
        errors += check_units_against(units, d.per_unit, "dropped", d.source)
    if view.layout == "v2":
        errors += _limit([
            f"dropped/{unit}.parquet: {d.records.get(unit, 0)} record(s) but "
            f"stats/{unit}.json says {n} documents dropped"
            for unit, n in sorted(units.dropped.items())
            if d.records.get(unit, 0) != n and (n or unit in d.records)])
    return errors


def check_run_stats(view: OutputView, totals: dict[str, Any]) -> tuple[list[str], list[str]]:
    """stats.json (the run totals) must equal the sum of the units and files."""
    run = view.run_stats
    if run is None:
        return [], ["stats.json missing: run not finished? (totals summed from stats/)"]
    errors = []
    for key in RUN_KEYS:
        if key not in run:
            continue
        mine, theirs = totals.get(key), run[key]
        if isinstance(mine, dict):
            mine = {k: v for k, v in mine.items() if v}
            theirs = {k: v for k, v in (theirs or {}).items() if v}
        if mine != theirs:
            errors.append(f"stats.json: {key} = {theirs} but the unit stats and files "
                          f"give {mine}")
    ingested = run.get("documents_ingested")
    if ingested is not None and int(ingested) != totals["documents_in"]:
        errors.append(f"stats.json: documents_ingested = {ingested} but the units hold "
                      f"{totals['documents_in']} input documents")
    return errors, []

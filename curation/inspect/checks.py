"""Consistency checks: per-unit identities, manifest vs stats, drop table vs stats,
run totals vs the sum of units. Each failure is one line naming the file it came from."""

from __future__ import annotations

from collections import Counter
from typing import Any

from curation.inspect.load import OutputView

RUN_KEYS = ("documents_in", "documents_written", "images_in", "images_written",
            "bytes_written", "documents_dropped", "image_status", "images_dropped",
            "sources", "shards", "units", "quarantined", "manifest_rows")


def _n(counts: dict | None) -> int:
    return sum(int(v) for v in (counts or {}).values())


def check_unit(st: dict) -> list[str]:
    """Identities that hold inside one stats/UNIT.json."""
    where = f"stats/{st.get('unit', '?')}.json"
    g = lambda k: int(st.get(k) or 0)  # noqa: E731
    shards = st.get("shards") or []
    ok = int((st.get("image_status") or {}).get("ok", 0))
    rules = [
        ("documents_in", g("documents_in"),
         "documents_written + sum(documents_dropped)",
         g("documents_written") + _n(st.get("documents_dropped"))),
        ("documents_in", g("documents_in"), "sum(sources)", _n(st.get("sources"))),
        ("images_in", g("images_in"), "sum(image_status)", _n(st.get("image_status"))),
        ("sum(images_dropped)", _n(st.get("images_dropped")), "images_in - image_status.ok",
         g("images_in") - ok),
        ("documents_written", g("documents_written"), "sum(shards.samples)",
         sum(int(s.get("samples", 0)) for s in shards)),
        ("images_written", g("images_written"), "sum(shards.images)",
         sum(int(s.get("images", 0)) for s in shards)),
        ("bytes_written", g("bytes_written"), "sum(shards.bytes)",
         sum(int(s.get("bytes", 0)) for s in shards)),
    ]
    errors = [f"{where}: {a} = {x} but {b} = {y}" for a, x, b, y in rules if x != y]
    if g("images_written") > ok:
        errors.append(f"{where}: images_written = {g('images_written')} exceeds "
                      f"image_status.ok = {ok}")
    return errors


def _shard_rows(view: OutputView) -> dict[str, dict[str, int]]:
    """Manifest rows, images and bytes per shard (an Arrow group-by: millions of rows
    stay fast)."""
    m = view.manifest
    if m.num_rows == 0:
        return {}
    agg = m.group_by("shard").aggregate(
        [("key", "count"), ("num_images", "sum"), ("bytes", "sum")]).to_pylist()
    return {r["shard"]: {"samples": int(r["key_count"]), "images": int(r["num_images_sum"]
            or 0), "bytes": int(r["bytes_sum"] or 0)} for r in agg}


def check_manifest(view: OutputView, totals: dict[str, Any]) -> list[str]:
    """Manifest and drop table against the unit stats, shard by shard."""
    src, errors = view.sources.get("manifest", "manifest"), []
    if view.manifest.num_rows != totals["documents_written"]:
        errors.append(f"{src}: {view.manifest.num_rows} rows but stats say "
                      f"{totals['documents_written']} documents written")
    keys = view.manifest.column("key").to_pylist()
    if len(set(keys)) != len(keys):
        dup = next(k for k, c in Counter(keys).items() if c > 1)
        errors.append(f"{src}: sample key {dup} appears more than once")
    rows = _shard_rows(view)
    listed = {}
    for st in view.units:
        for sh in st.get("shards") or []:
            listed[sh["name"]] = sh
            got = rows.get(sh["name"], {"samples": 0, "images": 0, "bytes": 0})
            for k in ("samples", "images", "bytes"):
                if int(sh.get(k, 0)) != got[k]:
                    errors.append(f"{src}: shard {sh['name']}: manifest {k} = {got[k]} but "
                                  f"stats/{st.get('unit')}.json says {sh.get(k)}")
    for name in sorted(set(rows) - set(listed)):
        errors.append(f"{src}: shard {name} is in the manifest but in no stats file")
    if view.shard_files is not None:
        for name in sorted(set(listed) - set(view.shard_files)):
            errors.append(f"shards/{name}: listed in the stats but the file is missing")
    errors.extend(_check_drops(view, totals))
    return errors


def _check_drops(view: OutputView, totals: dict[str, Any]) -> list[str]:
    src = view.sources.get("drops", "drops")
    if src == "missing" and not totals["documents_dropped"]:
        return []
    got = Counter(f"{s}:{r}" for s, r in zip(view.drops.column("stage").to_pylist(),
                                             view.drops.column("reason").to_pylist()))
    want = Counter({k: int(v) for k, v in totals["documents_dropped"].items()})
    if got == want:
        return []
    diff = sorted(k for k in set(got) | set(want) if got[k] != want[k])
    return [f"{src}: {sum(got.values())} dropped documents; per stats "
            f"{sum(want.values())}; differs at " +
            ", ".join(f"{k} ({got[k]} vs {want[k]})" for k in diff[:5])]


def check_run_stats(view: OutputView, totals: dict[str, Any]) -> tuple[list[str], list[str]]:
    """stats.json (the run totals) must equal the sum of the unit stats."""
    run = view.run_stats
    if run is None:
        return [], ["stats.json missing: run not finished? (totals summed from stats/)"]
    errors = []
    for key in RUN_KEYS:
        if key not in run:
            continue
        mine = totals.get(key)
        theirs = run[key]
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

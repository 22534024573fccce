"""Plain-text rendering of a summary (``curate stats``) and of two side by side."""

from __future__ import annotations

from typing import Any

from curation.inspect.distributions import metric_titles

COLS = ("count", "mean", "min", "p50", "p90", "max")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def step_note(step: dict[str, Any]) -> str:
    """What a funnel step removed, in words."""
    parts = []
    if step["kind"] == "input":
        q = step["notes"].get("quarantined") or {}
        if q:
            parts.append(f"quarantined {sum(q.values())} ({_counts(q)})")
    if step["documents_dropped"]:
        parts.append("docs: " + _counts(step["documents_dropped"]))
    if step["images_dropped"]:
        parts.append("images: " + _counts(step["images_dropped"]))
    if step["kind"] == "written":
        parts.append(f"{step['notes']['shards']} shard(s), "
                     f"{human_bytes(step['notes']['bytes'])}")
    return " | ".join(parts)


def _step_label(step: dict[str, Any]) -> str:
    if step["kind"] in ("input", "written"):
        return step["label"]
    return f"{step['label']} [{step['kind']}]"


def render_funnel(steps: list[dict[str, Any]], title: str = "FUNNEL") -> list[str]:
    lines = [f"{title:<30}{'documents':>10}{'images':>10}  removed at this step"]
    for step in steps:
        lines.append(f"{_step_label(step):<30}{step['documents']:>10}{step['images']:>10}"
                     f"  {step_note(step)}")
    return lines


def render_lineage(lineage: dict[str, Any]) -> list[str]:
    """The funnel through every run, one block per run, first run first."""
    lines = [f"FUNNEL THROUGH {len(lineage['runs'])} RUNS (lineage; this run last)"]
    for run in lineage["runs"]:
        lines += ["", f"run {run['name'] or '?'}: {run['output']}"]
        lines += render_funnel(run["steps"], "  step")[1:]
    if lineage.get("how"):
        lines += ["", f"read: {'whole' if lineage.get('read_whole') else 'in part'} "
                      f"({lineage['how']})"]
    return lines


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def render_distributions(dists: dict[str, dict], title: str) -> list[str]:
    titles = metric_titles()
    lines = [f"{title:<44}" + "".join(f"{c:>9}" for c in COLS)]
    for name, h in dists.items():
        lines.append(f"  {titles.get(name, name)[:42]:<42}" +
                     "".join(f"{_fmt(h.get(c, '')):>9}" for c in COLS))
    return lines


def render_summary(summary: dict[str, Any]) -> str:
    pipe = summary["pipeline"]
    stages = " -> ".join(map(str, pipe.get("stages") or [])) or "(stages unknown)"
    lines = [f"output:   {summary['output']}",
             f"pipeline: {pipe.get('name') or '?'} (fingerprint {pipe.get('fingerprint')}): "
             f"{stages}", ""]
    lineage = summary.get("lineage")
    if lineage and len(lineage["runs"]) > 1:  # this run's funnel is the last block
        lines += render_lineage(lineage) + [""]
    else:
        lines += render_funnel(summary["steps"]) + [""]
    dists = summary["distributions"]
    lines += render_distributions(dists["all"], "DISTRIBUTIONS (written documents)")
    for source, d in dists["by_source"].items():
        lines += [""] + render_distributions(d, f"source {source}")
    lines.append("")
    for w in summary["warnings"]:
        lines.append(f"warning: {w}")
    for e in summary["errors"]:
        lines.append(f"ERROR: {e}")
    lines.append("counts: OK (every count adds up)" if summary["ok"]
                 else f"counts: {len(summary['errors'])} ERROR(S)")
    return "\n".join(lines)


def render_branches(summary: dict[str, Any]) -> str:
    """A branched output: one line per branch, then each branch in full."""
    pipe = summary["pipeline"]
    lines = [f"output:   {summary['output']}",
             f"pipeline: {pipe.get('name') or '?'} (fingerprint {pipe.get('fingerprint')})"
             f", trunk: {' -> '.join(map(str, pipe.get('stages') or [])) or '?'}", "",
             f"{'BRANCH':<24}{'documents':>10}{'images':>10}  counts"]
    for name, b in summary["branches"].items():
        t = b.get("totals") or {}
        lines.append(f"{name:<24}{t.get('documents_written', '-'):>10}"
                     f"{t.get('images_written', '-'):>10}  "
                     f"{'OK' if b['ok'] else 'ERROR'}")
    for name, b in summary["branches"].items():
        lines += ["", f"===== branch {name} " + "=" * 40]
        lines.append(render_summary(b) if not b.get("missing")
                     else "\n".join(f"ERROR: {e}" for e in b["errors"]))
    return "\n".join(lines)


def render_compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Funnel and distribution means of two outputs, aligned by step and metric."""
    lines = [f"A: {a['output']}", f"B: {b['output']}", "",
             f"{'FUNNEL':<30}{'A docs':>9}{'B docs':>9}{'delta':>8}"
             f"{'A images':>10}{'B images':>10}{'delta':>8}"]
    sa = {s["label"]: s for s in a["steps"]}
    sb = {s["label"]: s for s in b["steps"]}
    labels = [s["label"] for s in a["steps"]]
    labels += [s["label"] for s in b["steps"] if s["label"] not in sa]
    for label in labels:
        x, y = sa.get(label), sb.get(label)
        cells = []
        for key in ("documents", "images"):
            va, vb = (x or {}).get(key), (y or {}).get(key)
            delta = f"{vb - va:+d}" if va is not None and vb is not None else ""
            cells.append(f"{_fmt(va if va is not None else '-'):>9}"
                         f"{_fmt(vb if vb is not None else '-'):>9}{delta:>8}")
        lines.append(f"{label:<30}{cells[0]} {cells[1]}")
    lines += ["", f"{'MEAN (written documents)':<44}{'A':>10}{'B':>10}"]
    da, db = a["distributions"]["all"], b["distributions"]["all"]
    titles = metric_titles()
    for name in list(dict.fromkeys([*da, *db])):
        lines.append(f"  {titles.get(name, name)[:42]:<42}"
                     f"{_fmt(da.get(name, {}).get('mean', '-')):>10}"
                     f"{_fmt(db.get(name, {}).get('mean', '-')):>10}")
    for tag, s in (("A", a), ("B", b)):
        lines += [f"{tag}: ERROR: {e}" for e in s["errors"]]
    return "\n".join(lines)

"""Outputs of the first version (per-unit shards ``UNIT-PP.tar``, ``manifest.parquet``
without byte ranges, shard lists in ``stats/UNIT.json``, ``drops.parquet``,
``quarantine.jsonl``) are still read: stats, show (by scanning the shard) and report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.cli import main as curate
from curation.inspect.summary import summarize_output


def to_v1(out: Path) -> Path:
    """Rewrite the constructed output in the first version's layout."""
    parts = [pq.read_table(p) for p in sorted((out / "manifest").glob("*.parquet"))]
    manifest = pa.concat_tables(parts)
    rows = manifest.to_pylist()
    shard_lists: dict[str, list] = {}
    tars: dict[str, bytes] = {}
    for unit in sorted({r["unit"] for r in rows}):
        mine = [r for r in rows if r["unit"] == unit]
        name = f"{unit}-00.tar"
        blob = b""
        for r in mine:
            with open(out / "shards" / r["shard"], "rb") as f:
                f.seek(r["offset"])
                blob += f.read(r["length"])
        tars[name] = blob + b"\0" * 1024
        shard_lists[unit] = [{"name": name, "samples": len(mine),
                              "images": sum(r["num_images"] for r in mine),
                              "bytes": sum(r["bytes"] for r in mine)}]
    shutil.rmtree(out / "shards")
    (out / "shards").mkdir()
    for name, blob in tars.items():
        (out / "shards" / name).write_bytes(blob)
    shard_col = pa.array([f"{u}-00.tar" for u in manifest.column("unit").to_pylist()])
    manifest = manifest.set_column(manifest.schema.get_field_index("shard"), "shard",
                                   shard_col).drop_columns(["offset", "length"])
    pq.write_table(manifest, out / "manifest.parquet")
    drops = pa.concat_tables([pq.read_table(p) for p in sorted((out / "drops").glob("*"))])
    pq.write_table(drops, out / "drops.parquet")
    quarantine = "".join(p.read_text() for p in sorted((out / "quarantine").glob("*")))
    (out / "quarantine.jsonl").write_text(quarantine)
    for sub in ("manifest", "drops", "dropped", "quarantine"):
        shutil.rmtree(out / sub)
    (out / "shards.parquet").unlink()
    for path in (out / "stats").glob("*.json"):
        st = json.loads(path.read_text())
        st["shards"] = shard_lists.get(st["unit"], [])
        path.write_text(json.dumps(st))
    assert pc.sum(manifest.column("num_images")).as_py() == 5
    return out


def test_v1_stats_show_and_report(constructed_output, tmp_path, capsys):
    out = to_v1(constructed_output)
    s = summarize_output(str(out))
    assert s["ok"], s["errors"]
    assert s["read_from"]["layout"] == "v1"
    assert s["read_from"]["manifest"] == "manifest.parquet"
    assert s["totals"]["shards"] == 2 and s["totals"]["documents_written"] == 4
    assert [x["images"] for x in s["steps"]] == [13, 10, 8, 7, 5, 5]
    assert curate(["show", str(out), "00001-00000-000003"]) == 0
    assert "key 00001-00000-000003  shard 00001-00000-00.tar" in capsys.readouterr().out
    assert curate(["report", str(out), "--html", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count('alt="0000') == 5


def test_v1_shard_list_mismatch(constructed_output):
    out = to_v1(constructed_output)
    path = out / "stats" / "00000-00000.json"
    st = json.loads(path.read_text())
    st["shards"][0]["samples"] = 3
    path.write_text(json.dumps(st))
    s = summarize_output(str(out))
    assert "stats/00000-00000.json: documents_written = 2 but sum(shards.samples) = 3" \
        in s["errors"]
    assert "shard 00000-00000-00.tar: stats/*.json shard lists says samples = 3 but the " \
           "manifest gives 2" in s["errors"]

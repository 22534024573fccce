"""What an operator sees: a short progress output (no line per unit, no Ray
warnings), details in a log file under the output, and a dry run that writes
nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO


def corpus(folder: Path, n: int) -> Path:
    folder.mkdir()
    lines = [json.dumps({"url": f"http://s/{i}", "text_list": [f"text {i}", "more"],
                         "image_info": [{"raw_url": f"http://i/{i}.jpg"}]})
             for i in range(n)]
    lines.insert(7, "{not json")
    (folder / "docs.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def curate(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, "-m", "curation.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_many_units_print_a_few_quiet_lines(tmp_path):
    pipeline = {"name": "quiet", "ingest": {"docs_per_unit": 1},
                "stages": [{"dedup": {}}, {"url_words": {}}], "writer": {"max_samples": 7}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pipeline))
    inputs = corpus(tmp_path / "in", 60)
    out = tmp_path / "out"
    done = curate("run", str(tmp_path / "p.yaml"), "-i", str(inputs), "-o", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines() + done.stdout.splitlines()
    assert 4 <= len(lines) <= 12, lines  # 60 units, yet a handful of lines
    assert not [ln for ln in lines if "WARNING" in ln or "core_worker" in ln or
                "deprecated" in ln.lower()], lines
    first = lines[0]
    assert "log: " in first
    log = Path(first.split("log: ", 1)[1].strip())
    assert log.parent == out / "_logs" and log.exists()
    detail = log.read_text()
    assert detail.count("unit 00000-") >= 60 * 2  # every unit of both passes is logged


def test_dry_run_checks_inputs_prints_the_plan_and_writes_nothing(tmp_path):
    pipeline = {"name": "plan", "stages": [{"dedup": {}}, {"url_words": {}},
                                           {"image_frequency": {}}]}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pipeline))
    inputs = corpus(tmp_path / "in", 30)
    out = tmp_path / "out"
    done = curate("run", str(tmp_path / "p.yaml"), "-i", str(inputs), "-o", str(out),
                  "--dry-run")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "1 would be quarantined ({'malformed_json': 1})" in text
    assert "pass 0: from input -> facts for dedup (global barrier: fit)" in text
    assert "pass 2: from input -> shards" in text
    assert "apply:dedup+url_words: tasks" in text
    assert "nothing was written" in text and not out.exists()
    # bad inputs: a clear error, still nothing written
    (tmp_path / "bad.jsonl").write_text("garbage\nmore garbage\n")
    bad = curate("run", str(tmp_path / "p.yaml"), "-i", str(tmp_path / "bad.jsonl"),
                 "-o", str(out), "--dry-run")
    assert bad.returncode == 2 and "none of the first 2 records parse" in bad.stderr
    missing = curate("run", str(tmp_path / "p.yaml"), "-i", str(tmp_path / "nope"),
                     "-o", str(out), "--dry-run")
    assert missing.returncode == 2 and "input not found" in missing.stderr
    (tmp_path / "broken.yaml").write_text("stages:\n  - dedup: {thresold: 0.5}\n")
    broken = curate("run", str(tmp_path / "broken.yaml"), "-i", str(inputs), "-o", str(out),
                    "--dry-run")
    assert broken.returncode == 2 and "dedup.thresold: unknown parameter" in broken.stderr
    assert not out.exists()


def test_curate_dedup_shows_its_progress_quietly(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in range(3):
        (inputs / f"part-{f}.jsonl").write_text("".join(
            json.dumps({"url": f"http://s/{f}/{i}", "text_list": [f"text {i % 5} of a page"],
                        "image_info": []}) + "\n" for i in range(20)))
    done = curate("dedup", "-i", str(inputs), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("curate dedup: 3 input file(s) -> ")
    # 60 records, 5 distinct texts: 55 exact copies, found in the fit, then 3 files written
    assert any(ln.startswith("dedup: facts and fit in ") and ln.endswith("exact 55")
               for ln in lines), lines
    assert lines[-1].startswith("dedup: writing: 3/3 files") and "5 kept, 55 removed" in lines[-1]
    assert len(lines) <= 6 and not [ln for ln in lines if "WARNING" in ln], lines

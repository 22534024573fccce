"""Inspection stays light and never touches a tar it does not need, in fresh processes:
no torch, Ray or pandas imported (pyarrow imports pandas on many calls, 0.3-0.5 s and
~50 MB at start-up; the inspect code avoids those calls), `curate stats` opens no tar
(an audit hook watches every open; tars replaced by garbage change nothing), and its
exit code is right every time (issue 13 item 4: it used to abort with 134 at exit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WRAPPER = r"""
import contextlib, io, json, sys
opened = []
def hook(event, args):
    if event == "open" and str(args[0]).endswith(".tar"):
        opened.append(str(args[0]).rsplit("/", 1)[-1])
sys.addaudithook(hook)
from curation.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "tars": sorted(set(opened)), "stdout": out.getvalue(),
                  "stderr": err.getvalue(),
                  "heavy": sorted(m for m in ("torch", "ray", "webdataset", "pandas")
                           if m in sys.modules)}))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def run_wrapped(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True,
                          text=True, env=_env(), timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_inspect_commands_import_neither_torch_nor_ray(constructed_output, tmp_path):
    out = str(constructed_output)
    stats = run_wrapped("stats", out)
    assert (stats["rc"], stats["heavy"], stats["tars"]) == (0, [], [])
    assert "counts: OK" in stats["stdout"]
    show = run_wrapped("show", out, "00001-00000-000003")
    assert (show["rc"], show["heavy"]) == (0, [])
    assert show["tars"] == ["000001.tar"]  # the hook sees tar opens: it can fail above
    report = run_wrapped("report", out, "--html", str(tmp_path / "r.html"))
    assert (report["rc"], report["heavy"]) == (0, [])
    assert report["tars"] == ["000000.tar", "000001.tar"]


def test_cli_start_imports_no_library():
    """`curate --help` imports every command module: they must stay light."""
    code = ("import sys; from curation.cli import build_parser; build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'numpy', "
            "'fsspec', 'pandas', 'torch', 'ray', 'matplotlib', 'PIL'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(), timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.fixture
def garbage_tars(constructed_output):
    """Every tar overwritten with garbage of the same size and made unreadable."""
    tars = sorted((constructed_output / "shards").glob("*.tar"))
    for i, tar in enumerate(tars):
        tar.write_bytes(bytes((i * 31 + j * 7) % 251 for j in range(tar.stat().st_size)))
        tar.chmod(0)
    yield constructed_output
    for tar in tars:
        tar.chmod(0o644)


def test_stats_never_opens_a_tar(garbage_tars, tmp_path):
    stats = run_wrapped("stats", str(garbage_tars))
    assert stats["rc"] == 0 and "counts: OK (every count adds up)" in stats["stdout"]
    assert stats["tars"] == []
    report = run_wrapped("report", str(garbage_tars), "--html", str(tmp_path / "r.html"))
    assert report["rc"] == 2
    assert "curate report: error: " in report["stderr"]
    assert "/shards/000000.tar bytes 0-" in report["stderr"]
    assert not (tmp_path / "r.html").exists()


def _stats_runs(out: str, n: int, *extra: str) -> list[tuple[int, str]]:
    results = []
    for _ in range(n):
        proc = subprocess.run([sys.executable, "-m", "curation.cli", "stats", out, *extra],
                              capture_output=True, text=True, env=_env(), timeout=300,
                              cwd=REPO)
        results.append((proc.returncode, proc.stderr[-300:]))
    return results


@pytest.mark.timeout(900)
def test_stats_exit_code_is_zero_20_times(constructed_output):
    results = _stats_runs(str(constructed_output), 20)
    assert results == [(0, "")] * 20


@pytest.mark.timeout(900)
def test_stats_exit_code_on_s3_5_times(constructed_output, s3_bucket):
    import s3fs

    bucket, options = s3_bucket
    s3fs.S3FileSystem(**options).put(str(constructed_output), f"{bucket}/out",
                                     recursive=True)
    results = _stats_runs(f"{bucket}/out", 5, "--storage-options", json.dumps(options))
    assert [rc for rc, _ in results] == [0] * 5, results
    assert not any("terminate called" in err for _, err in results)


def test_remote_parquet_is_read_from_arrow_memory():
    """A non-local filesystem (fsspec's memory://) goes through bytes copied into
    Arrow-allocated memory: same table, and the buffer owns no Python object."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.location import Location
    from shards.reader import arrow_buffer, open_parquet

    table = pa.table({"key": ["a", "b"], "n": [1, 2]})
    fs = fsspec.filesystem("memory")
    with fs.open("/inspect-test/t.parquet", "wb") as f:
        pq.write_table(table, f)
    assert open_parquet(fs, "/inspect-test/t.parquet").read().equals(table)
    assert Location("memory://inspect-test").read_parquet("t.parquet", ["n"]).equals(
        table.select(["n"]))
    buf = arrow_buffer(b"\x01\x02\x03")
    assert buf.to_pybytes() == b"\x01\x02\x03" and buf.is_mutable  # allocated, not wrapped
    fs.rm("/inspect-test", recursive=True)

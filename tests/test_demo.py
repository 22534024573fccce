"""`make demo`'s code path: the real pipeline on the bundled corpus over HTTP; its
shards read back with plain webdataset and every image decodes with Pillow."""

from __future__ import annotations

import io
import json

import webdataset as wds
from PIL import Image

from curation.demo.__main__ import main as demo_main


def test_demo_end_to_end(ray_session, tmp_path, capsys):
    assert demo_main(["--output", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    run = tmp_path / "demo" / "run"
    assert f"report:   {tmp_path / 'demo' / 'report.html'}" in printed
    assert "counts: OK" in printed
    totals = json.loads((run / "stats.json").read_text())
    assert totals["documents_ingested"] == 55
    assert totals["quarantined"] == {"malformed_json": 1}
    assert totals["documents_written"] + sum(totals["documents_dropped"].values()) == 55
    dropped = totals["documents_dropped"]
    assert dropped.get("dedup:duplicate_exact") == 1
    assert dropped.get("dedup:duplicate_minhash") == 1
    assert totals["image_status"].get("http_404", 0) >= 3
    assert totals["images_dropped"].get("url_words:url_word") == 1  # the logo URL
    n_images = 0
    for sample in wds.WebDataset(sorted(str(p) for p in (run / "shards").glob("*.tar")),
                                 shardshuffle=False):
        rec = json.loads(sample["json"])
        assert len(rec["similarity_matrix"]) == len(rec["images"])  # CLIP scored it
        for im in rec["images"]:
            if im["member"]:
                assert len(im["similarities"]) == len(rec["texts"])
                assert rec["texts"][im["matched_text_index"]]
                assert im["matched_sim"] == max(im["similarities"]) or rec["source"] == "mmc4"
                Image.open(io.BytesIO(sample[im["member"]])).load()
                n_images += 1
    assert n_images == totals["images_written"] > 50
    assert (tmp_path / "demo" / "report.html").stat().st_size > 10_000

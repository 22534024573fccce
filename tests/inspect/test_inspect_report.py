"""The HTML report: self-contained, seeded gallery, model-order rendering."""

from __future__ import annotations

import json
import re

from curation.cli import main as curate
from curation.inspect.gallery import sample_keys
from curation.inspect.load import load_output
from curation.inspect.report_html import render_report


def test_report_is_self_contained_and_complete(constructed_output, tmp_path, capsys):
    html_path = tmp_path / "r" / "report.html"
    assert curate(["report", str(constructed_output), "--html", str(html_path),
                   "--samples", "10", "--seed", "1"]) == 0
    assert f"report: {html_path}" in capsys.readouterr().out
    html = html_path.read_text()
    srcs = re.findall(r'<img src="([^"]*)"', html)
    assert len(srcs) == 14 and all(s.startswith("data:image/") for s in srcs)
    assert not re.search(r'(src|href)="(https?:|//|file:)', html)  # nothing fetched
    assert "Every count adds up." in html
    summary = json.loads(re.search(r'<script type="application/json" id="summary">(.*?)'
                                   r"</script>", html, re.S).group(1))
    assert summary["totals"]["documents_written"] == 4
    # document 00000-00000-000001: image before its assigned sentence, 404 listed
    doc = html[html.index("<h3>00000-00000-000001"):]
    doc = doc[:doc.index("</article>")]
    assert doc.index("First sentence here.") < doc.index("<img") < doc.index("A second one.")
    assert "72x72, sim 0.280, sentence 1" in doc
    assert "<code>http_404</code> by download" in doc


def test_gallery_draw_is_seeded(constructed_output):
    view = load_output(str(constructed_output))
    a, b = sample_keys(view, 2, seed=7), sample_keys(view, 2, seed=7)
    assert a == b and len(a) == 2
    draws = {tuple(x.key for x in sample_keys(view, 2, seed=s)) for s in range(10)}
    assert len(draws) > 1
    assert [x.key for x in sample_keys(view, 99, seed=0)] == [
        "00000-00000-000000", "00000-00000-000001", "00001-00000-000000",
        "00001-00000-000003"]
    assert {x.shard for x in sample_keys(view, 99, seed=0)} == {"000000.tar", "000001.tar"}


def test_report_with_errors_says_so(constructed_output):
    (constructed_output / "stats.json").write_text(json.dumps({"documents_in": 1}))
    html = render_report(str(constructed_output), samples=0)
    assert "1 count error(s)" in html and "No samples requested" in html

"""End to end: render the report in headless Chromium, screenshot it, and check that
every image loaded (naturalWidth > 0) and the page logged no errors."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from inspect_chromium import dump_dom, ensure_chromium, screenshot
from PIL import Image

from curation.inspect.report_html import CHECK_SCRIPT, write_report


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.body = dict(attrs)
        elif tag == "img":
            self.images.append(dict(attrs))


def parse(dom: str) -> _Dom:
    p = _Dom()
    p.feed(dom)
    return p


@pytest.mark.timeout(2000)  # may first apt-get install chromium
def test_report_renders_in_chromium(constructed_output, tmp_path):
    binary = ensure_chromium()
    page = write_report(str(constructed_output), tmp_path / "report.html", samples=50, seed=3)
    dom = parse(dump_dom(binary, page))
    assert dom.body.get("data-report-ready") == "1", "the load event never ran"
    assert json.loads(dom.body["data-errors"]) == []
    assert json.loads(dom.body["data-images-broken"]) == []
    # funnel chart + 8 histograms + the 5 written images of the 4 documents
    assert len(dom.images) == int(dom.body["data-images-total"]) == 14
    assert all(int(im["data-natural-width"]) > 0 for im in dom.images)
    gallery = [im for im in dom.images if im["alt"].startswith("000")]
    assert len(gallery) == 5
    png = screenshot(binary, page, tmp_path / "report.png")
    with Image.open(png) as shot:
        assert shot.size == (1200, 3000)
        colors = shot.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colors is not None and len(colors) > 50  # charts and photos, not blank


@pytest.mark.timeout(2000)
def test_broken_image_and_script_error_are_caught(tmp_path):
    """The same check script reports failures, so the test above can fail."""
    binary = ensure_chromium()
    page = tmp_path / "bad.html"
    page.write_text(f"<!DOCTYPE html><html><head><script>{CHECK_SCRIPT}</script></head>"
                    '<body><img alt="bad" src="data:image/png;base64,AAAA">'
                    "<script>console.error('boom'); undefinedFunction();</script>"
                    "</body></html>")
    dom = parse(dump_dom(binary, page))
    assert dom.body.get("data-report-ready") == "1"
    assert json.loads(dom.body["data-images-broken"]) == ["bad"]
    errors = json.loads(dom.body["data-errors"])
    assert any("boom" in e for e in errors) and any("undefinedFunction" in e for e in errors)
    assert dom.images[0]["data-natural-width"] == "0"

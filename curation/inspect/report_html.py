"""`curate report`: one self-contained HTML file (charts and images as data URIs,
no external resource) with the funnel, the distributions and a gallery of samples.

An inline script records image load failures and page errors on ``<body>``
(``data-images-broken``, ``data-errors``, ``data-report-ready``) so a headless browser
test can read them from the dumped DOM."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from curation.inspect.charts import distribution_charts, funnel_chart
from curation.inspect.distributions import metric_titles
from curation.inspect.gallery import render_gallery
from curation.inspect.load import load_output
from curation.inspect.summary import summarize
from curation.inspect.table import human_bytes, step_note

CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:14px}td,th{padding:4px 10px;border-bottom:1px solid #eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37}.err{color:#b42318;font-weight:bold}.problem{color:#b42318}
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts img{max-width:520px}
.doc{border:1px solid #ddd;border-radius:6px;padding:8px 16px;margin:16px 0}
.doc h3 small{color:#666;font-weight:normal}
.flow p{margin:6px 0}figure{margin:8px 0;display:inline-block;background:#f6f6f6;padding:6px}
figcaption{font-size:12px;color:#555}.dropped{font-size:13px;color:#8a4b00}
.img-missing{color:#b42318;font-size:13px}pre{white-space:pre-wrap;font-size:12px}
"""

# Records broken images and errors on <body> after load (read by the browser test).
CHECK_SCRIPT = """
(function(){
  var errors = [];
  window.addEventListener('error', function(e){
    var t = e.target;
    if (t && t.tagName === 'IMG') { errors.push('image failed: ' + (t.alt || t.src.slice(0, 40))); }
    else { errors.push('error: ' + e.message); }
  }, true);
  window.addEventListener('unhandledrejection', function(e){
    errors.push('rejection: ' + e.reason);
  });
  var origError = console.error;
  console.error = function(){
    errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return origError.apply(console, arguments);
  };
  window.addEventListener('load', function(){
    var imgs = document.images, broken = [];
    for (var i = 0; i < imgs.length; i++) {
      imgs[i].setAttribute('data-natural-width', imgs[i].naturalWidth);
      if (!imgs[i].complete || imgs[i].naturalWidth === 0) {
        broken.push(imgs[i].alt || ('#' + i));
      }
    }
    var b = document.body;
    b.setAttribute('data-images-total', String(imgs.length));
    b.setAttribute('data-images-broken', JSON.stringify(broken));
    b.setAttribute('data-errors', JSON.stringify(errors));
    b.setAttribute('data-report-ready', '1');
  });
})();
"""


def _funnel_table(steps: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{escape(s['label'])}</td><td>{escape(s['kind'])}</td>"
        f"<td class='n'>{s['documents']}</td><td class='n'>{s['images']}</td>"
        f"<td>{escape(step_note(s))}</td></tr>" for s in steps)
    return ("<table><tr><th>step</th><th>kind</th><th>documents</th><th>images</th>"
            f"<th>removed at this step</th></tr>{rows}</table>")


def _lineage(summary: dict[str, Any]) -> str:
    """The funnel through every run, when this run read an earlier run's output."""
    lin = summary.get("lineage")
    if not lin:
        return ""
    parts = ["<h3>Through every run (lineage)</h3>"]
    for run in lin["runs"]:
        parts.append(f"<p>run <b>{escape(str(run['name']))}</b> "
                     f"<code>{escape(str(run['output']))}</code></p>")
        parts.append(_funnel_table(run["steps"]))
    return "".join(parts)


def _checks(summary: dict[str, Any]) -> str:
    if summary["ok"]:
        head = '<p class="ok">Every count adds up.</p>'
    else:
        head = f'<p class="err">{len(summary["errors"])} count error(s):</p>'
    items = [f'<li class="err">{escape(e)}</li>' for e in summary["errors"]]
    items += [f"<li>{escape(w)}</li>" for w in summary["warnings"]]
    return head + (f"<ul>{''.join(items)}</ul>" if items else "")


def _dist_section(summary: dict[str, Any]) -> str:
    charts = distribution_charts(summary["distributions"])
    titles = metric_titles()
    imgs = "".join(f'<img src="{uri}" alt="{escape(titles.get(name, name))}">'
                   for name, uri in charts.items())
    rows = "".join(
        f"<tr><td>{escape(titles.get(name, name))}</td>" +
        "".join(f"<td class='n'>{h.get(c, '')}</td>"
                for c in ("count", "mean", "min", "p50", "p90", "max")) + "</tr>"
        for name, h in summary["distributions"]["all"].items())
    table = ("<table><tr><th>metric</th><th>n</th><th>mean</th><th>min</th><th>p50</th>"
             f"<th>p90</th><th>max</th></tr>{rows}</table>")
    return f'{table}<div class="charts">{imgs}</div>'


def render_report(output: str, samples: int = 12, seed: int = 0,
                  storage_options: dict | None = None) -> str:
    """The report's HTML text."""
    view = load_output(output, storage_options)
    if view.branches:
        raise ValueError(f"{output} is a branched output (branches: "
                         f"{', '.join(view.branches)}): report one branch, e.g. "
                         f"{output.rstrip('/')}/{view.branches[0]}")
    summary = summarize(view)
    pipe = summary["pipeline"]
    written = summary["steps"][-1]["notes"]
    title = f"Curation report: {pipe.get('name') or output}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{CSS}</style><script>{CHECK_SCRIPT}</script></head>
<body>
<h1>{escape(title)}</h1>
<p>output <code>{escape(output)}</code> · stages {escape(" → ".join(map(str, pipe.get("stages")
   or [])))} · fingerprint <code>{escape(str(pipe.get("fingerprint")))}</code> ·
   {written["shards"]} shard(s), {escape(human_bytes(written["bytes"]))}</p>
<h2>Funnel</h2>{_checks(summary)}{_funnel_table(summary["steps"])}{_lineage(summary)}
<p><img src="{funnel_chart(summary["steps"])}" alt="funnel chart"></p>
<h2>Distributions (written documents)</h2>{_dist_section(summary)}
<h2>Sampled documents (seed {seed})</h2>
<p>As the model sees them: each image before its assigned sentence.</p>
{render_gallery(view, samples, seed)}
<script type="application/json" id="summary">{_json_for_script(summary)}</script>
</body></html>
"""


def _json_for_script(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True).replace("</", "<\\/")


def write_report(output: str, html_path: str | Path, samples: int = 12, seed: int = 0,
                 storage_options: dict | None = None) -> Path:
    """Write the report for ``output`` to ``html_path``; returns the path written."""
    path = Path(html_path)
    text = render_report(output, samples, seed, storage_options)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

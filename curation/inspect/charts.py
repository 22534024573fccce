"""Matplotlib charts as PNG data URIs, drawn from the summary numbers (so the pictures
show exactly what `curate stats` prints). Uses ``Figure`` directly: no pyplot state."""

from __future__ import annotations

import base64
import io
from typing import Any

from matplotlib.figure import Figure

from curation.inspect.distributions import metric_titles

DOC_COLOR, IMG_COLOR = "#3b6ea8", "#e39b2d"
SOURCE_COLORS = ("#2a9d8f", "#e76f51", "#8e6cc0", "#6a994e", "#bc4749", "#577590")


def png_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def funnel_chart(steps: list[dict[str, Any]]) -> str:
    """Horizontal bars: documents and images left after each step."""
    labels = [s["label"] for s in steps][::-1]
    docs = [s["documents"] for s in steps][::-1]
    imgs = [s["images"] for s in steps][::-1]
    fig = Figure(figsize=(8, 0.55 * len(steps) + 1.2))
    ax = fig.add_subplot()
    y = range(len(labels))
    h = 0.38
    ax.barh([i + h / 2 for i in y], docs, height=h, color=DOC_COLOR, label="documents")
    ax.barh([i - h / 2 for i in y], imgs, height=h, color=IMG_COLOR, label="images")
    for i, (d, m) in enumerate(zip(docs, imgs)):
        ax.text(d, i + h / 2, f" {d}", va="center", fontsize=8)
        ax.text(m, i - h / 2, f" {m}", va="center", fontsize=8)
    ax.set_yticks(list(y), labels)
    ax.set_xlabel("count left after the step")
    ax.set_title("Curation funnel")
    ax.legend(loc="lower right", fontsize=8)
    ax.margins(x=0.12)
    return png_data_uri(fig)


def histogram_chart(name: str, overall: dict[str, Any],
                    per_source: dict[str, dict[str, Any]]) -> str:
    """The overall histogram filled; each source as an outline on the same bins."""
    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    ax.stairs(overall["counts"], overall["edges"], fill=True, color="#b8c7dd",
              label=f"all (n={overall['count']})")
    if len(per_source) > 1:
        for color, (source, h) in zip(SOURCE_COLORS, sorted(per_source.items())):
            if h.get("count"):
                ax.stairs(h["counts"], h["edges"], color=color, linewidth=1.6,
                          label=f"{source} (n={h['count']})")
    ax.set_title(metric_titles().get(name, name), fontsize=10)
    ax.set_ylabel("count")
    ax.legend(fontsize=7)
    return png_data_uri(fig)


def distribution_charts(dists: dict[str, Any]) -> dict[str, str]:
    """{metric: data URI} for every metric with data."""
    out = {}
    for name, overall in dists["all"].items():
        if not overall.get("count"):
            continue
        per_source = {s: d[name] for s, d in dists["by_source"].items() if name in d}
        out[name] = histogram_chart(name, overall, per_source)
    return out

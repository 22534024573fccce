"""HTML gallery of sampled documents, rendered the way the model sees them: texts in
order, each written image (a data URI) placed before its assigned sentence with its
similarity and size, then the dropped images with their reason."""

from __future__ import annotations

import base64
import io
import random
from html import escape
from typing import Any

from PIL import Image

from curation.inspect.docview import dropped_images, image_caption, model_text, segments
from curation.inspect.load import OutputView
from curation.inspect.samples import Sample, read_samples

THUMB_PX = 320  # longest side of an embedded image; keeps the report small


def sample_keys(view: OutputView, n: int, seed: int) -> dict[str, str]:
    """{key: shard} of ``n`` documents drawn with ``seed`` (same draw on every run)."""
    keys = view.manifest.column("key").to_pylist()
    shards = view.manifest.column("shard").to_pylist()
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    chosen = random.Random(seed).sample(order, min(n, len(order)))
    return {keys[i]: shards[i] for i in sorted(chosen, key=lambda i: keys[i])}


def thumbnail_uri(data: bytes) -> tuple[str | None, str]:
    """(data URI of a JPEG/PNG thumbnail, problem); decoded with Pillow first so a
    broken image is reported in words instead of shipped to the browser."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img.thumbnail((THUMB_PX, THUMB_PX))
            fmt, mime = ("PNG", "image/png") if img.mode in ("RGBA", "LA", "P") \
                else ("JPEG", "image/jpeg")
            if fmt == "JPEG" and img.mode != "RGB":
                img = img.convert("RGB")
            buf = io.BytesIO()
            img.save(buf, fmt, quality=85)
    except Exception as exc:  # noqa: BLE001 - any undecodable payload is reported
        return None, f"undecodable image ({type(exc).__name__}: {exc})"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}", ""


def _figure(im: dict[str, Any], sample: Sample, key: str) -> str:
    caption = escape(image_caption(im))
    data = sample.files.get(im["member"])
    if data is None:
        return f'<div class="img-missing">missing member {escape(im["member"])}</div>'
    uri, problem = thumbnail_uri(data)
    if uri is None:
        return f'<div class="img-missing">{escape(problem)}</div>'
    alt = escape(f"{key}.{im['member']}")
    return (f'<figure><img src="{uri}" alt="{alt}" title="{escape(im.get("url") or "")}">'
            f"<figcaption>{caption}</figcaption></figure>")


def render_document(sample: Sample) -> str:
    rec = sample.record or {}
    head = (f'<h3>{escape(sample.key)} <small>{escape(str(rec.get("source")))} · '
            f'{escape(str(rec.get("doc_id")))} · {escape(sample.shard)}</small></h3>')
    body = []
    for kind, value in segments(rec):
        if kind == "image":
            body.append(_figure(value.image, sample, sample.key))
        else:
            body.append(f"<p>{escape(value)}</p>")
    drops = dropped_images(rec)
    tail = ""
    if drops:
        items = "".join(f"<li><code>{escape(str(im.get('status')))}</code> by "
                        f"{escape(str(im.get('dropped_by')))}: {escape(im.get('url') or '')}"
                        "</li>" for im in drops)
        tail = f'<div class="dropped">dropped images:<ul>{items}</ul></div>'
    problems = "".join(f'<p class="problem">{escape(p)}</p>' for p in sample.problems)
    text = escape(model_text(rec))
    return (f'<article class="doc">{head}<div class="flow">{"".join(body)}</div>{tail}'
            f'<details><summary>model text</summary><pre>{text}</pre></details>'
            f"{problems}</article>")


def render_gallery(view: OutputView, n: int, seed: int) -> str:
    if n <= 0:
        return "<p>No samples requested (--samples 0).</p>"
    chosen = sample_keys(view, n, seed)
    samples = read_samples(view.root, chosen, view.storage_options)
    parts = [render_document(samples[k]) for k in chosen if k in samples]
    missing = [k for k in chosen if k not in samples]
    if missing:
        parts.append(f'<p class="problem">not found in their shards: '
                     f'{escape(", ".join(missing))}</p>')
    return "".join(parts) or "<p>No written documents to show.</p>"

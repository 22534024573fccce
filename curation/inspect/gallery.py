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

from curation.inspect.arrow_io import iter_batches, parquet_file
from curation.inspect.docview import dropped_images, image_caption, model_text, segments
from curation.inspect.load import OutputView
from curation.inspect.samples import Located, Sample, read_located, read_shard_samples
from curation.inspect.show import ROW_COLUMNS

THUMB_PX = 320  # longest side of an embedded image; keeps the report small


def _part_rows(view: OutputView) -> list[int]:
    """Rows of each manifest part: from shards.parquet, else the parts' footers."""
    if view.layout == "v2" and view.shard_index is not None:
        by_shard = {str(r["shard"]): int(r["samples"]) for r in view.shard_index}
        rows = [by_shard.get(p.rsplit("/", 1)[-1].replace(".parquet", ".tar"))
                for p in view.manifest_names]
        if None not in rows:
            return rows  # type: ignore[return-value]
    return [parquet_file(view.loc, p).metadata.num_rows for p in view.manifest_names]


def sample_keys(view: OutputView, n: int, seed: int) -> list[Located]:
    """``n`` written documents drawn with ``seed`` (the same draw on every run), in
    manifest (key) order. Draws row numbers, then reads only the parts holding them:
    memory grows with ``n``, not with the output."""
    counts = _part_rows(view)
    total = sum(counts)
    chosen = sorted(random.Random(seed).sample(range(total), min(n, total)))
    out: list[Located] = []
    start = 0
    for part, rows in zip(view.manifest_names, counts):
        wanted = [i - start for i in chosen if start <= i < start + rows]
        start += rows
        if not wanted:
            continue
        seen = 0
        for _, batch in iter_batches(view.loc, [part], ROW_COLUMNS):
            if batch is None:
                continue
            for i in wanted:
                if seen <= i < seen + batch.num_rows:
                    r = batch.slice(i - seen, 1).to_pylist()[0]
                    out.append(Located(str(r["key"]), str(r["shard"]), r.get("offset"),
                                       r.get("length")))
            seen += batch.num_rows
    return out


def read_samples(view: OutputView, chosen: list[Located]) -> list[Sample]:
    """The chosen samples: by byte range, else (older outputs) one scan per shard."""
    out: list[Sample] = []
    for at in chosen:
        if at.offset is not None:
            out.append(read_located(view.loc, at))
            continue
        found = read_shard_samples(view.loc, at.shard, {at.key})
        out.append(found.get(at.key) or Sample(at.key, at.shard, problems=[
            f"shards/{at.shard}: sample {at.key} not found"]))
    return out


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
    samples = read_samples(view, sample_keys(view, n, seed))
    return "".join(render_document(s) for s in samples) or \
        "<p>No written documents to show.</p>"

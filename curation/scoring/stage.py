"""The ``clip_score`` stage: CLIP similarities written onto documents, then MMC4's
assignment. Scores only; filters in ``filters/`` make the cuts from stored scores.

Runs in a pool of long-lived actors (the model is loaded once per actor in
``setup``): ``num_gpus`` per actor (fractional allowed, e.g. 0.5 = two actors per
GPU), ``concurrency`` actors (one per GPU is the usual choice); with ``num_gpus: 0``
the actors are CPU-only. Decode + preprocess run on ``decode_threads`` CPU threads
inside the actor, batches ahead of the model (see ``prepare.py`` for why not a
separate stage). The whole unit is scored in model-sized batches across documents.

Per document it writes ``ImageRecord.similarities`` (cosine to each text),
``similarity_matrix`` (one row per image slot, ``[]`` for images not scored), and
``matched_text_index``/``matched_sim``; a pair's ``matched_sim`` is its
image-caption similarity. Kept images whose bytes do not decode are dropped as
``clip_undecodable``; kept images without bytes as ``clip_no_data``.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections import Counter

import numpy as np
from pydantic import Field

from curation.document import Document, ImageRecord
from curation.scoring.assign import assign_document
from curation.scoring.encode import encode_pixels, similarity_rows, text_table
from curation.scoring.model import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    ClipModel,
    DeviceName,
    Precision,
    load_clip,
)
from curation.scoring.prepare import UNDECODABLE, prepared_batches
from curation.stage import Resources, Stage, StageConfig

log = logging.getLogger(__name__)
NO_DATA = "clip_no_data"


class ClipScoreConfig(StageConfig):
    model: str = DEFAULT_MODEL
    pretrained: str | None = Field(DEFAULT_PRETRAINED, description="tag, checkpoint "
                                   "path, or null for random weights")
    model_config_dir: str | None = None  # extra open_clip architecture JSON files
    batch_size: int = Field(256, ge=1)
    num_gpus: float = Field(0.0, ge=0, description="per actor; 0 = CPU actors")
    num_cpus: float = Field(1.0, gt=0, description="per actor (decode threads)")
    concurrency: int = Field(1, ge=1, description="actors in the pool")
    decode_threads: int | None = Field(None, ge=1, description="default: num_cpus")
    prefetch_batches: int = Field(2, ge=0)
    precision: Precision = "auto"
    device: DeviceName = "auto"  # auto: cuda when num_gpus > 0 and a GPU is visible


class ClipScoreStage(Stage):
    name = "clip_score"
    Config = ClipScoreConfig
    config: ClipScoreConfig

    def __init__(self, config: ClipScoreConfig | None = None) -> None:
        super().__init__(config)
        self.clip: ClipModel | None = None
        self.counts: Counter[str] = Counter()

    @property
    def resources(self) -> Resources:
        cfg = self.config
        return Resources(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, actor_pool=True,
                         concurrency=cfg.concurrency)

    def setup(self) -> None:
        if self.clip is None:
            cfg = self.config
            # A CPU actor stays on the CPU even where the node has GPUs.
            device = "cpu" if cfg.device == "auto" and cfg.num_gpus == 0 else cfg.device
            self.clip = load_clip(cfg.model, cfg.pretrained, cfg.model_config_dir,
                                  device, cfg.precision)

    def process_kept(self, docs: list[Document]) -> None:
        self.setup()
        slots = self._scorable(docs)
        vecs, failed = self.embed_images([im.data or b"" for _, im in slots])
        for i, err in failed.items():
            d, im = slots[i]
            log.warning("clip_score: %s (%s): image %s does not decode: %s",
                        docs[d].doc_id, docs[d].provenance.location(), im.url, err)
            im.drop(UNDECODABLE, self.name)
            self.counts[UNDECODABLE] += 1
        assert self.clip is not None
        table = text_table(self.clip, [t for d in docs for t in d.texts],
                           self.config.batch_size)
        by_doc: dict[int, list[tuple[ImageRecord, np.ndarray]]] = {}
        for (d, im), vec in zip(slots, vecs):
            if vec is None:
                continue
            by_doc.setdefault(d, []).append((im, vec))
        for d, doc in enumerate(docs):
            write_scores(doc, by_doc.get(d, []), table)

    def _scorable(self, docs: list[Document]) -> list[tuple[int, ImageRecord]]:
        slots = []
        for d, doc in enumerate(docs):
            for im in doc.kept_images:
                if im.data is None:
                    im.drop(NO_DATA, self.name)
                    self.counts[NO_DATA] += 1
                else:
                    slots.append((d, im))
        return slots

    def embed_images(self, datas: list[bytes]
                     ) -> tuple[list[np.ndarray | None], dict[int, str]]:
        """Unit vectors per image (None where the bytes did not decode) and the
        decoder's error text by position."""
        clip, cfg = self.clip, self.config
        assert clip is not None
        out: list[np.ndarray | None] = [None] * len(datas)
        failed: dict[int, str] = {}
        threads = cfg.decode_threads or max(1, int(cfg.num_cpus))
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for batch in prepared_batches(datas, clip.preprocess, cfg.batch_size, pool,
                                          cfg.prefetch_batches,
                                          pin_memory=clip.device.type == "cuda"):
                if batch.pixels is not None:
                    for i, vec in zip(batch.indices, encode_pixels(clip, batch.pixels)):
                        out[i] = vec
                failed.update(batch.failed)
        self.counts["images_scored"] += len(datas) - len(failed)
        return out, failed


def write_scores(doc: Document, scored: list[tuple[ImageRecord, np.ndarray]],
                 table: dict[str, np.ndarray]) -> None:
    """Similarities, the per-slot matrix and the assignment for one document."""
    vecs = np.stack([v for _, v in scored]) if scored else np.zeros((0, 0), np.float32)
    for (im, _), row in zip(scored, similarity_rows(vecs, doc.texts, table)):
        im.similarities = [float(v) for v in row]
    done = {id(im) for im, _ in scored}
    doc.similarity_matrix = [list(im.similarities or []) if id(im) in done else []
                             for im in doc.images]
    assign_document(doc)

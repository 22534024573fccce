"""The ``clip_score`` stage: CLIP similarities written onto documents, then MMC4's
assignment. Scores only; filters in ``filters/`` make the cuts from stored scores.

Runs in a pool of long-lived actors (the model is loaded once per actor in
``setup``): ``num_gpus`` per actor (fractional allowed, e.g. 0.5 = two actors per
GPU); by default the runner sizes the pool from 1 up to every GPU of the cluster
(``concurrency`` pins it). With ``num_gpus: 0`` the actors are CPU-only (one unless
``concurrency`` says more). Each actor keeps a ``ScoringEngine`` (``engine.py``):
persistent decode threads, one model thread, batches that span documents and units;
the runner runs two ``process`` calls per actor at once (``max_concurrent_calls``),
so one unit's texts, assignment and record writing overlap the other's forward.

Per document it writes ``ImageRecord.similarities`` (cosine to each text),
``similarity_matrix`` (one row per image slot, ``[]`` for images not scored), and
``matched_text_index``/``matched_sim``; a pair's ``matched_sim`` is its
image-caption similarity. Kept images whose bytes do not decode are dropped as
``clip_undecodable``; kept images without bytes as ``clip_no_data``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import numpy as np
from pydantic import Field

from curation.document import Document, ImageRecord
from curation.scoring.assign import assign_document, is_empty
from curation.scoring.encode import similarity_rows
from curation.scoring.engine import ScoringEngine
from curation.scoring.model import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    ClipModel,
    DeviceName,
    Precision,
    load_clip,
)
from curation.scoring.prepare import UNDECODABLE
from curation.stage import Resources, Stage, StageConfig

log = logging.getLogger(__name__)
NO_DATA = "clip_no_data"
CONCURRENT_CALLS = 2  # process() calls one actor runs at once (see the module doc)


class ClipScoreConfig(StageConfig):
    model: str = DEFAULT_MODEL
    pretrained: str | None = Field(DEFAULT_PRETRAINED, description="tag, checkpoint "
                                   "path, or null for random weights")
    init_seed: int = Field(0, description="random weights (pretrained: null) are drawn "
                           "from this seed: the same in every actor, run and machine")
    model_config_dir: str | None = None  # extra open_clip architecture JSON files
    batch_size: int = Field(256, ge=1)
    num_gpus: float = Field(0.0, ge=0, description="per actor; 0 = CPU actors")
    num_cpus: float = Field(1.0, gt=0, description="per actor (decode threads)")
    concurrency: int | None = Field(None, ge=1, description="actors in the pool; default: "
                                    "every GPU of the cluster (GPU actors), 1 (CPU)")
    decode_threads: int | None = Field(None, ge=1, description="default: num_cpus")
    prefetch_batches: int = Field(2, ge=0, description="batches decoded ahead")
    precision: Precision = "auto"
    device: DeviceName = "auto"  # auto: cuda when num_gpus > 0 and a GPU is visible


class ClipScoreStage(Stage):
    name = "clip_score"
    Config = ClipScoreConfig
    config: ClipScoreConfig

    def __init__(self, config: ClipScoreConfig | None = None) -> None:
        super().__init__(config)
        self.clip: ClipModel | None = None
        self.engine: ScoringEngine | None = None
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Shipped to workers without its lock, model or threads (built in setup)."""
        state = dict(self.__dict__)
        state.update(_lock=None, clip=None, engine=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def resources(self) -> Resources:
        cfg = self.config
        return Resources(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, actor_pool=True,
                         concurrency=cfg.concurrency,
                         max_concurrent_calls=CONCURRENT_CALLS)

    def setup(self) -> None:
        with self._lock:
            if self.engine is not None:
                return
            cfg = self.config
            # A CPU actor stays on the CPU even where the node has GPUs; a GPU actor on
            # a worker where CUDA is unavailable falls back to the CPU (auto).
            device = "cpu" if cfg.device == "auto" and cfg.num_gpus == 0 else cfg.device
            self.clip = load_clip(cfg.model, cfg.pretrained, cfg.model_config_dir,
                                  device, cfg.precision, cfg.init_seed)
            threads = cfg.decode_threads or max(1, int(cfg.num_cpus))
            self.engine = ScoringEngine(self.clip, cfg.batch_size, threads,
                                        cfg.prefetch_batches)
            log.info("clip_score: %s on %s (%s), %d decode threads", cfg.model,
                     self.clip.device, self.clip.dtype, threads)

    def close(self) -> None:
        """Stop the engine's threads (an actor simply exits; tests and benchmarks)."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def process_kept(self, docs: list[Document]) -> None:
        """Thread-safe: the actor may run two calls at once on different units."""
        self.setup()
        engine = self.engine
        assert engine is not None
        slots, no_data = self._scorable(docs)
        images = engine.submit_images([im.data or b"" for _, im in slots])
        unique = sorted({t for d in docs for t in d.texts if not is_empty(t)})
        texts = engine.submit_texts(unique)
        images.wait(engine)
        texts.wait(engine)
        table = dict(zip(unique, texts.vecs)) if texts.vecs is not None else {}
        for i, err in sorted(images.failed.items()):
            d, im = slots[i]
            log.warning("clip_score: %s (%s): image %s does not decode: %s",
                        docs[d].doc_id, docs[d].provenance.location(), im.url, err)
            im.drop(UNDECODABLE, self.name)
        by_doc: dict[int, list[tuple[ImageRecord, np.ndarray]]] = {}
        for i, (d, im) in enumerate(slots):
            if i not in images.failed:
                by_doc.setdefault(d, []).append((im, images.vecs[i]))
        for d, doc in enumerate(docs):
            write_scores(doc, by_doc.get(d, []), table)
        with self._lock:
            self.counts[NO_DATA] += no_data
            self.counts[UNDECODABLE] += len(images.failed)
            self.counts["images_scored"] += len(slots) - len(images.failed)

    def _scorable(self, docs: list[Document]) -> tuple[list[tuple[int, ImageRecord]], int]:
        slots, no_data = [], 0
        for d, doc in enumerate(docs):
            for im in doc.kept_images:
                if im.data is None:
                    im.drop(NO_DATA, self.name)
                    no_data += 1
                else:
                    slots.append((d, im))
        return slots, no_data


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

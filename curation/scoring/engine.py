"""One scoring engine per actor: decode threads -> one model thread -> delivery thread.

Why: the model must never wait between units. ``process`` calls (the runner lets an
actor run two at once) hand their images and texts to this engine and wait for the
vectors; the engine keeps its threads for the actor's whole life:

- a *feeder* thread takes up to ``batch_size`` pending images (from any caller, so
  batches span documents and units) once one of ``prefetch_batches + 1`` batch slots
  is free, and has the persistent decode pool write them into one (pinned) buffer;
- the *model* thread runs batches in order: copies a buffer to the device, launches
  the forward (CUDA runs asynchronously, so it goes on to the next batch at once) and
  queues the result's copy back to pinned host memory with an event;
- a *delivery* thread waits for each event and writes rows into the callers' arrays.

So decode of batch k+1, the forward of batch k and the bookkeeping of batch k-1 (and
the other call's assignment and record writing) overlap. Decoder errors are data (a
reason per image); anything else raised on these threads (CUDA errors, out of memory)
fails every waiting call and every later one: infrastructure faults are not data.
"""

from __future__ import annotations

import collections
import logging
import queue
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from curation.scoring.encode import (
    image_features,
    text_features,
    token_lengths,
    trim_is_exact,
    trim_tokens,
)
from curation.scoring.model import ClipModel
from curation.scoring.prepare import InputSpec, channel_stats, decode_into

log = logging.getLogger(__name__)
MAX_QUEUED = 2  # batches launched on the GPU and not yet finished
GIL_SWITCH_S = 0.001


class EngineError(RuntimeError):
    """The engine's threads failed (not a data problem); the actor should be replaced."""


@dataclass(eq=False)
class Ticket:
    """One caller's request; vectors land in the caller's order."""

    size: int
    vecs: np.ndarray | None = None  # (size, d) float32, allocated on first delivery
    failed: dict[int, str] = field(default_factory=dict)
    error: BaseException | None = None
    _remaining: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._remaining = self.size
        if self.size == 0:
            self._done.set()

    def deliver(self, index: np.ndarray, rows: np.ndarray) -> None:
        with self._lock:
            if self.vecs is None:
                self.vecs = np.zeros((self.size, rows.shape[1]), np.float32)
            self.vecs[index] = rows
            self._count(len(index))

    def fail(self, index: int, reason: str) -> None:
        with self._lock:
            self.failed[index] = reason
            self._count(1)

    def abort(self, exc: BaseException) -> None:
        with self._lock:
            self.error = exc
            self._done.set()

    def _count(self, n: int) -> None:
        self._remaining -= n
        if self._remaining <= 0:
            self._done.set()

    def wait(self, engine: ScoringEngine) -> Ticket:
        while not self._done.wait(1.0):
            engine.check_alive()
        if self.error is not None:
            raise EngineError(f"clip_score engine failed: {self.error!r}") from self.error
        return self


@dataclass
class _ImageBatch:
    jobs: list[tuple[Ticket, int, bytes]]
    buffer: torch.Tensor
    futures: list[Future]


@dataclass
class _TextBatch:
    ticket: Ticket
    index: np.ndarray
    tokens: torch.Tensor


class _Pending:
    """FIFO of image jobs; ``put_many`` is atomic, so a unit is never split by a
    concurrent taker into needlessly small batches."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def put_many(self, items: list) -> None:
        with self._cond:
            self._items.extend(items)
            self._cond.notify()

    def take(self, n: int) -> list | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return [self._items.popleft() for _ in range(min(n, len(self._items)))]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class ScoringEngine:
    """Thread-safe: any number of callers may ``submit_*`` and ``wait`` at once."""

    def __init__(self, clip: ClipModel, batch_size: int, decode_threads: int,
                 prefetch_batches: int = 2, text_batch_size: int | None = None) -> None:
        self.clip = clip
        self.spec = InputSpec.from_transform(clip.preprocess)
        self.batch_size = batch_size
        self.text_batch_size = text_batch_size or batch_size
        self.cuda = clip.device.type == "cuda"
        if self.cuda and sys.getswitchinterval() > GIL_SWITCH_S:
            # The model thread launches a forward op by op, needing the GIL each time;
            # next to the callers' Python bookkeeping it would wait up to 5 ms (the
            # default) per hand-over. The actor's process is this stage's alone.
            sys.setswitchinterval(GIL_SWITCH_S)
        self.trim = trim_is_exact(clip)
        self.stats = channel_stats(self.spec, clip.device)
        self._inflight: collections.deque = collections.deque()  # CUDA events
        self._pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="clip-decode")
        self._pending = _Pending()
        self._slots = threading.Semaphore(prefetch_batches + 1)
        self._work: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._open: set[Ticket] = set()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._closed = False
        self._threads = [threading.Thread(target=self._guard, args=(fn,), name=name,
                                          daemon=True)
                         for fn, name in ((self._feed_loop, "clip-feeder"),
                                          (self._model_loop, "clip-model"),
                                          (self._deliver_loop, "clip-delivery"))]
        for t in self._threads:
            t.start()

    # -- callers -----------------------------------------------------------------
    def submit_images(self, datas: Sequence[bytes]) -> Ticket:
        ticket = self._ticket(len(datas))
        if datas:
            self._pending.put_many([(ticket, i, d) for i, d in enumerate(datas)])
        return ticket

    def submit_texts(self, texts: Sequence[str]) -> Ticket:
        """Tokenize on the caller's thread (CPU work off the model thread), shortest
        first so each batch is cut to similar lengths."""
        ticket = self._ticket(len(texts))
        if not texts:
            return ticket
        tokens = self.clip.tokenizer(list(texts))
        order = torch.argsort(token_lengths(tokens), stable=True).numpy()
        for s in range(0, len(order), self.text_batch_size):
            index = order[s:s + self.text_batch_size]
            chunk = tokens[torch.from_numpy(index)]
            self._work.put(_TextBatch(ticket, index, trim_tokens(chunk) if self.trim
                                      else chunk))
        return ticket

    def embed_images(self, datas: Sequence[bytes]) -> Ticket:
        return self.submit_images(datas).wait(self)

    def embed_texts(self, texts: Sequence[str]) -> Ticket:
        return self.submit_texts(texts).wait(self)

    def check_alive(self) -> None:
        if self._error is not None:
            raise EngineError(f"clip_score engine failed: {self._error!r}") from self._error
        if self._closed:
            raise EngineError("clip_score engine is closed")
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead:
            raise EngineError(f"clip_score engine threads died: {dead}")

    def close(self) -> None:
        """Stop the threads (tests, benchmarks; an actor just exits)."""
        self._closed = True
        self._pending.close()
        self._slots.release()  # a feeder waiting for a slot wakes up and sees the end
        self._work.put(None)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for t in self._threads:
            t.join(timeout=10)

    def _ticket(self, size: int) -> Ticket:
        self.check_alive()
        ticket = Ticket(size)
        with self._lock:
            self._open = {t for t in self._open if not t._done.is_set()}
            self._open.add(ticket)
        return ticket

    # -- threads -----------------------------------------------------------------
    def _guard(self, loop) -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - reported to every caller
            log.exception("clip_score engine thread failed")
            self._error = exc
            with self._lock:
                open_tickets = list(self._open)
            for ticket in open_tickets:
                ticket.abort(exc)
            self._pending.close()
            self._work.put(None)
            self._results.put(None)

    def _feed_loop(self) -> None:
        spec = self.spec
        while True:
            self._slots.acquire()
            jobs = self._pending.take(self.batch_size)
            if jobs is None:
                return
            if spec.fast and self.cuda:
                buffer = torch.empty((len(jobs), spec.height, spec.width, 3),
                                     dtype=torch.uint8, pin_memory=True)
            else:
                buffer = torch.empty((len(jobs), 3, spec.height, spec.width),
                                     dtype=torch.float32, pin_memory=self.cuda)
            futures = [self._pool.submit(decode_into, data, spec, buffer, k)
                       for k, (_, _, data) in enumerate(jobs)]
            self._work.put(_ImageBatch(jobs, buffer, futures))

    def _model_loop(self) -> None:
        if self.cuda:  # CUDA's current device is per thread
            torch.cuda.set_device(self.clip.device.index or 0)
        with self.clip.inference():
            while (item := self._work.get()) is not None:
                if isinstance(item, _TextBatch):
                    feats = text_features(self.clip, self._to_device(item.tokens),
                                          self.trim)
                    self._emit(feats, [(item.ticket, item.index)], [])
                else:
                    self._run_images(item)
        self._results.put(None)

    def _run_images(self, batch: _ImageBatch) -> None:
        try:
            errors = [f.result() for f in batch.futures]
            ok = [k for k, err in enumerate(errors) if err is None]
            failures = [(batch.jobs[k][0], batch.jobs[k][1], err)
                        for k, err in enumerate(errors) if err is not None]
            pixels = None
            if ok:
                pixels = batch.buffer if len(ok) == len(errors) else batch.buffer[ok]
                pixels = self._to_device(pixels.pin_memory() if self.cuda and
                                         not pixels.is_pinned() else pixels)
        finally:
            self._slots.release()  # the buffer is consumed (its copy is queued)
        feats = image_features(self.clip, pixels, self.stats) if pixels is not None else None
        groups: dict[Ticket, list[int]] = {}
        for k in ok:
            groups.setdefault(batch.jobs[k][0], []).append(batch.jobs[k][1])
        self._emit(feats, [(t, np.asarray(ix)) for t, ix in groups.items()], failures)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.clip.device, non_blocking=True) if self.cuda else tensor

    def _emit(self, feats: torch.Tensor | None, deliveries: list, failures: list) -> None:
        """Queue results for delivery; on CUDA the copy home is asynchronous, and at
        most ``MAX_QUEUED`` batches wait on the GPU (the model thread would otherwise
        run ahead of it, holding pinned buffers for every queued batch)."""
        event, host = None, feats
        if feats is not None and self.cuda:
            host = torch.empty(feats.shape, dtype=feats.dtype, pin_memory=True)
            host.copy_(feats, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._inflight.append(event)
            while len(self._inflight) > MAX_QUEUED:
                self._inflight.popleft().synchronize()
        self._results.put((event, host, deliveries, failures))

    def _deliver_loop(self) -> None:
        while (item := self._results.get()) is not None:
            event, host, deliveries, failures = item
            if event is not None:
                event.synchronize()
            rows = host.numpy() if host is not None else None
            start = 0
            for ticket, index in deliveries:
                ticket.deliver(index, rows[start:start + len(index)])
                start += len(index)
            for ticket, index, reason in failures:
                ticket.fail(index, reason)

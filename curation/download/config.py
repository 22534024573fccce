"""The download stage's validated settings (one flat YAML mapping).

Defaults are polite for the open web: at most 8 requests in flight and 20 requests/s
per host for the whole run (each host is owned by one download actor, so the limits
hold across workers and nodes), a browser-independent User-Agent carrying the project
token, opt-out honoured, private addresses refused. Loopback demos and tests open
127.0.0.1 with ``allow_hosts``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curation.stage import StageConfig

USER_AGENT_TOKEN = "vlmcurationbot"


class DownloadConfig(StageConfig):
    # Address policy
    allow_hosts: list[str] = Field(default_factory=list)  # host names, IPs or CIDRs
    # Download actors (long-lived; each owns the hosts that hash to it). None: one per
    # CPU of the cluster. ``actor_num_cpus`` is what each reserves in Ray's scheduler.
    actors: int | None = Field(None, ge=1)
    actor_num_cpus: float = Field(0.0, ge=0)
    # What each unit's task reserves while it waits for the actors (their work is not
    # reserved separately, so this stands in for it). Lower: more units in flight, so
    # one unit waiting for a slow host or a timeout leaves the actors busy with the
    # others, at the cost of a worker process and a unit's documents in memory each.
    task_num_cpus: float = Field(0.5, gt=0)
    # Images being fetched or decoded at once per actor: bounds memory (this many
    # bodies at most) without letting one slow host hold the others (a request waiting
    # for its host's turn holds no slot).
    max_in_flight: int = Field(256, ge=1)
    # Politeness per host, for the whole run
    per_host_concurrency: int = Field(8, ge=1)
    per_host_rps: float = Field(20.0, ge=0)  # 0 = no rate limit
    user_agent_token: str = USER_AGENT_TOKEN
    user_agent: str | None = None  # default: "<token>/0.1 (+image-text curation)"
    # X-Robots-Tag directives that opt an image out (img2dataset honours the same);
    # empty list = ignore the header.
    disallowed_header_directives: list[str] = Field(
        default_factory=lambda: ["noai", "noimageai"])
    # Bounds
    connect_timeout_s: float = Field(5.0, gt=0)
    timeout_s: float = Field(20.0, gt=0)  # total per attempt, headers + body
    max_bytes: int = Field(20 * 1024 * 1024, ge=1)  # decoded body bytes
    max_redirects: int = Field(5, ge=0)
    max_pixels: int = Field(50_000_000, ge=1)  # checked from the header, before decoding
    min_width: int = Field(0, ge=0)
    min_height: int = Field(0, ge=0)
    # Retries (connection errors, timeouts, 408, 429, 5xx)
    max_retries: int = Field(3, ge=0)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    max_retry_after_s: float = Field(60.0, ge=0)  # longer Retry-After: give up now
    dns_ttl_s: float = Field(300.0, ge=0)
    # "module:function" used instead of socket.getaddrinfo (same signature): a custom
    # resolver, or a fake one in tests.
    getaddrinfo: str | None = None
    # Decode / resize / encode
    resize_mode: Literal["none", "longest", "shortest", "center_crop"] = "none"
    resize_size: int = Field(336, ge=1)  # VILA-1 stores 336 px on the short side
    upscale: bool = False  # only shrink by default
    # Shrinking filter: "area" averages the source pixels each output pixel covers
    # (Pillow BOX; OpenCV INTER_AREA, img2dataset's default), about 2.5x cheaper than
    # "lanczos", which is sharper. Enlarging always uses lanczos.
    resize_filter: Literal["lanczos", "bicubic", "area"] = "lanczos"
    encode_format: Literal["jpeg", "webp"] = "jpeg"
    encode_quality: int = Field(95, ge=1, le=100)
    # Formats whose original bytes are kept when nothing had to change.
    keep_formats: list[str] = Field(default_factory=lambda: ["JPEG", "PNG", "WEBP"])
    decode_threads: int = Field(2, ge=1)  # per actor; Pillow releases the GIL
    # Documents whose images all failed: drop ("no_images") or keep as text-only.
    keep_text_only: bool = False

    def agent(self) -> str:
        return self.user_agent or f"{self.user_agent_token}/0.1 (+image-text curation)"

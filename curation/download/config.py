"""The download stage's validated settings (one flat YAML mapping).

Defaults are polite for the open web: at most 8 requests in flight and 20 requests/s
per host within one worker, a browser-independent User-Agent carrying the project
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
    # Concurrency and politeness (per worker process)
    max_in_flight: int = Field(64, ge=1)
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
    # Decode / resize / encode
    resize_mode: Literal["none", "longest", "shortest", "center_crop"] = "none"
    resize_size: int = Field(336, ge=1)  # VILA-1 stores 336 px on the short side
    upscale: bool = False  # only shrink by default
    encode_format: Literal["jpeg", "webp"] = "jpeg"
    encode_quality: int = Field(95, ge=1, le=100)
    # Formats whose original bytes are kept when nothing had to change.
    keep_formats: list[str] = Field(default_factory=lambda: ["JPEG", "PNG", "WEBP"])
    decode_threads: int = Field(1, ge=1)  # Pillow releases the GIL while decoding
    # Documents whose images all failed: drop ("no_images") or keep as text-only.
    keep_text_only: bool = False

    def agent(self) -> str:
        return self.user_agent or f"{self.user_agent_token}/0.1 (+image-text curation)"

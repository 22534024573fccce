"""Every image ends with ``ok`` or exactly one of these reason codes.

Codes are short, stable strings because stats are sums by code across shards and
runs. HTTP errors keep their exact 4xx code (``http_404``); all 5xx answers collapse
into ``http_5xx`` so the status table stays small. ``is_retryable`` says which
failures may succeed later: the downloader retries them within a run, and
``--retry-failed`` fetches them again on a finished output.
"""

from __future__ import annotations

OK = "ok"

# URL and address policy (decided before any connection is made)
INVALID_URL = "invalid_url"
UNSUPPORTED_SCHEME = "unsupported_scheme"
BLOCKED_ADDRESS = "blocked_address"

# Network
DNS_ERROR = "dns_error"  # name does not resolve
DNS_TEMPORARY = "dns_temporary"  # resolver said "try again" (EAI_AGAIN)
CONNECTION_ERROR = "connection_error"
TIMEOUT = "timeout"
TOO_MANY_REDIRECTS = "too_many_redirects"
BAD_REDIRECT = "bad_redirect"  # 3xx without a usable Location
HTTP_5XX = "http_5xx"
BAD_RESPONSE = "bad_response"  # malformed HTTP from the server

# Response content
OPTED_OUT = "opted_out"  # X-Robots-Tag noai / noimageai
TOO_LARGE = "too_large"  # more bytes than max_bytes
NOT_AN_IMAGE = "not_an_image"  # not a format Pillow recognises (HTML page, empty body)
TOO_MANY_PIXELS = "too_many_pixels"  # decompression bomb, refused before decoding
DECODE_ERROR = "decode_error"  # recognised but broken (truncated JPEG, bad chunk)
TOO_SMALL = "too_small"  # under min_width / min_height
ENCODE_ERROR = "encode_error"
FETCH_ERROR = "fetch_error"  # anything unforeseen; the run goes on

_RETRYABLE = {TIMEOUT, CONNECTION_ERROR, DNS_TEMPORARY, HTTP_5XX, "http_408", "http_429"}


def http_reason(status: int) -> str:
    """Reason code for an HTTP status that is not a success or a redirect."""
    if 500 <= status <= 599:
        return HTTP_5XX
    return f"http_{status}"


def is_retryable(reason: str) -> bool:
    """True where trying the same URL again later may succeed: timeouts, dropped
    connections, 5xx, 408 and 429. DNS failures, other 4xx, policy refusals and bad
    content are final (the same bytes or the same answer would come back)."""
    return reason in _RETRYABLE

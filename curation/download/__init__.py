"""Image download: policy -> fetch -> resize, one module per role.

Read in this order: ``policy`` (which URLs may be fetched), ``resolver`` (cached DNS
that refuses blocked addresses), ``limits`` (per-host concurrency and rate),
``fetch`` (async HTTP with retries), ``resize`` (Pillow decode and re-encode),
``stage`` (the Stage that ties them to Documents), ``reasons`` (status codes) and
``retry`` (resetting retryable failures for ``--retry-failed``).
"""

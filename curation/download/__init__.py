"""Image download: policy -> fetch -> resize, one module per role.

Read in this order: ``policy`` (which URLs may be fetched), ``resolver`` (cached DNS
that refuses blocked addresses), ``limits`` (per-host concurrency, rate and pauses),
``fetch`` (async HTTP with retries and the in-flight window), ``resize`` (Pillow
decode and re-encode), ``service`` (what one long-lived download actor runs: the
hosts it owns, for the whole run), ``stage`` (the Stage that ties them to Documents
and sends URLs to the actors), ``reasons`` (status codes) and ``retry`` (resetting
retryable failures for ``--retry-failed``).
"""

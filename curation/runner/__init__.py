"""The only place that imports Ray: turns stages into Ray Data operations."""

import os

# A local Ray binds the machine's external address unless Ray is told, before it is
# first imported, that this is not a cluster node: a run without an address stays on
# 127.0.0.1. With RAY_ADDRESS set (a real cluster) Ray's own default is kept. This
# package's __init__ runs before any of its modules imports Ray.
if not os.environ.get("RAY_ADDRESS"):
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

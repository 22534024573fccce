"""Installs the test network guard in every Python process a test session starts
(Ray workers and actors, `curate` subprocesses): the session puts this folder first
on PYTHONPATH and names a log folder in CURATION_TEST_NET_GUARD; both are inherited
by every child process, and Python imports ``sitecustomize`` at start-up."""

import os

if os.environ.get("CURATION_TEST_NET_GUARD"):
    import curation_netguard

    curation_netguard.install(os.environ["CURATION_TEST_NET_GUARD"])

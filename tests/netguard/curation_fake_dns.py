"""A fake resolver for the downloader's ``getaddrinfo`` hook: names answer from a
JSON table, never from DNS. Importable in every process of a test session (this
folder is on PYTHONPATH, see ``tests/conftest.py``), so download actors use it too.

The table lives in the file named by CURATION_FAKE_DNS: ``{"name": answer}`` where
an answer is an IP ("127.0.0.1"), "nxdomain" (EAI_NONAME: the name does not exist)
or "again" (EAI_AGAIN: try later). Unknown names do not exist. It is read at every
call, so a test can change an answer between two runs.
"""

from __future__ import annotations

import json
import os
import socket

ENV = "CURATION_FAKE_DNS"


def getaddrinfo(host, port=None, family=0, type=0, proto=0, flags=0):  # noqa: A002, ANN001, ANN201 - socket's signature
    with open(os.environ[ENV], encoding="utf-8") as f:
        answer = json.load(f).get(str(host).lower(), "nxdomain")
    if answer == "again":
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    if answer == "nxdomain":
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    fam = socket.AF_INET6 if ":" in answer else socket.AF_INET
    return [(fam, socket.SOCK_STREAM, 6, "", (answer, port or 0))]

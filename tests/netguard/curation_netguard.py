"""The test network guard: no test may reach beyond this machine.

``install(log_dir)`` patches, in the current process:
- ``socket.socket.connect`` / ``connect_ex`` (used by asyncio, aiohttp, urllib3,
  http.client, botocore...): a connection to anything but a loopback or unspecified
  address (or a Unix socket) is refused with ``ConnectionRefusedError``;
- ``socket.getaddrinfo`` / ``gethostbyname`` / ``gethostbyname_ex``: a name that
  would need a DNS query (anything but IP literals and the names in /etc/hosts) is
  refused with ``EAI_NONAME``, since the query itself would leave the machine.
Every refusal is appended as one JSON line to ``log_dir/<pid>.jsonl``, so the
pytest session (``tests/conftest.py``) sees attempts made in Ray workers and
subprocesses too, and fails the test during which they happened.

Attempts from Ray's own telemetry are refused too but marked ``telemetry`` (see
``RAY_TELEMETRY``), and a UDP ``connect`` (which sends nothing) is refused and logged
as ``udp-connect``: neither fails a test. Not covered: connections made from C code
that bypasses Python's socket module (Ray's own gRPC, bound to 127.0.0.1 in tests)
and ``sendto`` on unconnected UDP sockets.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
import traceback

ENV = "CURATION_TEST_NET_GUARD"  # the log folder; read by sitecustomize at start-up
# Ray's dashboard process probes cloud metadata addresses (169.254.169.254,
# metadata.google.internal) at start-up even with usage statistics disabled. Those
# attempts are refused like any other, and marked so the session does not blame them
# on the test that happened to start Ray.
RAY_TELEMETRY = os.path.join("ray", "_common", "usage", "usage_lib.py")
_INSTALLED: dict[str, str] = {}
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _hosts_file_names() -> set[str]:
    names = set(_LOCAL_NAMES)
    try:
        with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if len(fields) > 1 and _is_local_ip(fields[0]):
                    names.update(n.lower() for n in fields[1:])
    except OSError:
        pass
    return names


def _is_local_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
        return True
    except ValueError:
        return False


def installed() -> str | None:
    """The log folder of this process's guard, or None."""
    return _INSTALLED.get("log_dir")


def install(log_dir: str) -> None:
    """Patch this process (idempotent)."""
    if _INSTALLED:
        return
    os.makedirs(log_dir, exist_ok=True)
    _INSTALLED["log_dir"] = log_dir
    local_names = _hosts_file_names()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_gai = socket.getaddrinfo
    real_byname, real_byname_ex = socket.gethostbyname, socket.gethostbyname_ex

    def record(kind: str, target: object) -> None:
        stack = traceback.extract_stack()[:-2]
        entry = {"pid": os.getpid(), "kind": kind, "target": repr(target),
                 "time": time.time(),
                 "telemetry": any(f.filename.endswith(RAY_TELEMETRY) for f in stack),
                 "where": "".join(traceback.format_list(stack[-14:]))[-3000:]}
        line = (json.dumps(entry) + "\n").encode()
        fd = os.open(os.path.join(log_dir, f"{os.getpid()}.jsonl"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)  # one write of a short line: never interleaved
        finally:
            os.close(fd)

    def name_allowed(host: object) -> bool:
        if host is None or host == "" or isinstance(host, int):
            return True
        name = host.decode() if isinstance(host, bytes) else str(host)
        name = name.lower().rstrip(".")
        return _is_ip(name) or name in local_names or name.endswith(".localhost")

    def check_address(sock: socket.socket, address: object) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return  # Unix sockets, netlink...
        host = address[0] if isinstance(address, tuple) and address else address
        text = host.decode() if isinstance(host, bytes) else str(host)
        if _is_ip(text):
            ok = _is_local_ip(text)
        else:
            ok = name_allowed(text)
        if not ok:
            # A UDP connect sends nothing (Ray uses one to learn its outward address);
            # it is refused, so nothing can be sent on it, and logged as harmless.
            record("connect" if sock.type == socket.SOCK_STREAM else "udp-connect",
                   address)
            raise ConnectionRefusedError(
                111, f"test network guard: connection to {address!r} refused")

    def connect(self: socket.socket, address: object) -> None:
        check_address(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        check_address(self, address)
        return real_connect_ex(self, address)

    def refuse_name(host: object) -> None:
        if not name_allowed(host):
            record("resolve", host)
            raise socket.gaierror(socket.EAI_NONAME,
                                  f"test network guard: no DNS for {host!r}")

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN202 - socket's signature
        refuse_name(host)
        return real_gai(host, *args, **kwargs)

    def gethostbyname(host):  # noqa: ANN001, ANN202
        refuse_name(host)
        return real_byname(host)

    def gethostbyname_ex(host):  # noqa: ANN001, ANN202
        refuse_name(host)
        return real_byname_ex(host)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex


def read_new(log_dir: str, offsets: dict[str, int]) -> list[dict]:
    """Refusals logged by any guarded process since the last call with the same
    ``offsets`` (file name -> bytes already read; updated in place)."""
    out: list[dict] = []
    try:
        names = sorted(os.listdir(log_dir))
    except FileNotFoundError:
        return out
    for name in names:
        try:
            with open(os.path.join(log_dir, name), "rb") as f:
                f.seek(offsets.get(name, 0))
                data = f.read()
        except OSError:
            continue
        complete = data[:data.rfind(b"\n") + 1]  # a line being written waits
        offsets[name] = offsets.get(name, 0) + len(complete)
        out.extend(json.loads(line) for line in complete.splitlines() if line)
    return sorted(out, key=lambda e: e["time"])

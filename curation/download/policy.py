"""Which URLs may be fetched: http/https only, never internal addresses, and the
owner's opt-out honoured.

Addresses are judged after DNS resolution (see ``resolver``) so a public name that
points at 127.0.0.1 or the cloud metadata address 169.254.169.254 is refused too;
``fetch`` checks every redirect hop again. ``allow_hosts`` opens named hosts, IPs or
CIDRs (``127.0.0.1`` for the demo and the tests).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from yarl import URL

from curation.download import reasons

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SCHEMES = {"http", "https"}


class AddressPolicy:
    """Refuses loopback, private, link-local, multicast, reserved and other
    non-global addresses unless the host or address is on the allow list."""

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self.allow_names: set[str] = set()
        self.allow_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow_hosts:
            try:
                self.allow_nets.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self.allow_names.add(entry.strip().lower().rstrip("."))

    def check_url(self, url: str) -> tuple[URL | None, str | None]:
        """Parse ``url``; returns (URL, None) or (None, reason). IP literals are judged
        here (aiohttp does not resolve them); names are judged by the resolver."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            return None, reasons.INVALID_URL
        if parsed.scheme.lower() not in _SCHEMES:
            return None, reasons.UNSUPPORTED_SCHEME
        host = parsed.raw_host
        if not host or parsed.port is None:
            return None, reasons.INVALID_URL
        literal = parse_ip(host)
        if literal is not None and not self.address_allowed(host, literal):
            return None, reasons.BLOCKED_ADDRESS
        return parsed, None

    def name_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow_names

    def address_allowed(self, host: str, ip: IPAddress) -> bool:
        """True if ``ip`` (an address ``host`` resolved to) may be connected to."""
        if self.name_allowed(host) or any(ip in net for net in self.allow_nets):
            return True
        return is_public(ip)


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


# Refused whatever the running Python's ``is_global`` says (it has changed between
# versions): the 6to4 relay anycast prefix (RFC 3068, deprecated by RFC 7526) and
# IPv6 site-local addresses (RFC 3879: deprecated, routed like private space).
_ALWAYS_BLOCKED = tuple(ipaddress.ip_network(n) for n in ("192.88.99.0/24", "fec0::/10"))


def is_public(ip: IPAddress) -> bool:
    """A globally routable unicast address. IPv6 forms that carry an IPv4 address
    are judged by that address: IPv4-mapped (``::ffff:a.b.c.d``) and 6to4
    (``2002:AABB:CCDD::/48`` reaches a.b.c.d through a relay)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    if any(ip in net for net in _ALWAYS_BLOCKED):
        return False
    bad = (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
           or ip.is_reserved or ip.is_unspecified)
    return ip.is_global and not bad


def opted_out(headers: Mapping[str, str] | object, token: str,
              directives: Iterable[str]) -> bool:
    """True if an ``X-Robots-Tag`` header forbids use, for all agents or for ``token``.

    Values look like ``noai``, ``noai, noimageai`` or ``vlmcurationbot: noimageai``;
    the header may repeat. Same reading as img2dataset's ``is_disallowed``.
    """
    wanted = {d.lower() for d in directives}
    if not wanted:
        return False
    getall = getattr(headers, "getall", None)
    values = getall("X-Robots-Tag", []) if getall else [headers.get("X-Robots-Tag", "")]
    for value in values:
        agent, sep, rest = value.partition(":")
        scope, body = (agent.strip().lower(), rest) if sep else (None, value)
        if scope not in (None, token.lower()):
            continue
        if wanted & {d.strip().lower() for d in body.split(",")}:
            return True
    return False

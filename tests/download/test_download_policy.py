"""Address policy, opt-out header reading and retryable reasons."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from curation.download.policy import AddressPolicy, is_public, opted_out
from curation.download.reasons import http_reason, is_retryable


@pytest.mark.parametrize("ip, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("224.0.0.1", False), ("240.0.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:169.254.169.254", False),
    # 6to4 carries an IPv4 address: judged by it (2002:AABB:CCDD:: -> A.B.C.D)
    ("2002:a9fe:a9fe::1", False), ("2002:7f00:1::1", False), ("2002:a00:1::", False),
    ("2002:808:808::1", True),
    ("fec0::1", False), ("feff:ffff::1", False),  # site-local (deprecated)
    ("192.88.99.1", False), ("192.88.99.255", False),  # 6to4 relay anycast
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
])
def test_public_addresses(ip, public):
    assert is_public(ipaddress.ip_address(ip)) is public


@pytest.mark.parametrize("url, reason", [
    ("ftp://example.org/a.jpg", "unsupported_scheme"),
    ("file:///etc/passwd", "unsupported_scheme"),
    ("data:image/png;base64,AAAA", "unsupported_scheme"),
    ("http://", "invalid_url"),
    ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
    ("http://10.0.0.1/a.jpg", "blocked_address"),
    ("http://[::1]:8080/a.jpg", "blocked_address"),
    ("http://[::ffff:7f00:1]/a.jpg", "blocked_address"),
    ("http://127.0.0.2/a.jpg", "blocked_address"),
    ("http://[2002:a9fe:a9fe::1]/latest/meta-data/", "blocked_address"),
    ("http://[fec0::1]/a.jpg", "blocked_address"),
    ("http://192.88.99.1/a.jpg", "blocked_address"),
    ("http://127.0.0.1:9/a.jpg", None),
    ("https://example.org/a.jpg", None),  # names are judged by the resolver
])
def test_check_url(url, reason):
    _, got = AddressPolicy(["127.0.0.1"]).check_url(url)
    assert got == reason


def test_allow_list_takes_cidrs_and_names():
    policy = AddressPolicy(["10.0.0.0/8", "Intranet.Example."])
    assert policy.address_allowed("x", ipaddress.ip_address("10.9.9.9"))
    assert not policy.address_allowed("x", ipaddress.ip_address("192.168.0.1"))
    assert policy.address_allowed("intranet.example", ipaddress.ip_address("192.168.0.1"))


@pytest.mark.parametrize("values, out", [
    (["noai"], True), (["NoImageAI"], True), (["noindex, noai"], True),
    (["vlmcurationbot: noai"], True), (["otherbot: noai"], False),
    (["otherbot: noai", "noimageai"], True), (["noindex"], False), ([], False),
    (["unavailable_after: 25 Jun 2010 15:00:00 PST"], False),
])
def test_opt_out_header(values, out):
    headers = CIMultiDict([("X-Robots-Tag", v) for v in values])
    assert opted_out(headers, "vlmcurationbot", ["noai", "noimageai"]) is out


def test_opt_out_can_be_disabled():
    headers = CIMultiDict([("X-Robots-Tag", "noai")])
    assert not opted_out(headers, "vlmcurationbot", [])


@pytest.mark.parametrize("reason, retry", [
    ("timeout", True), ("connection_error", True), ("http_5xx", True), ("http_429", True),
    ("http_408", True), ("dns_temporary", True), ("http_404", False), ("http_403", False),
    ("dns_error", False), ("blocked_address", False), ("decode_error", False),
    ("too_large", False), ("opted_out", False), ("ok", False), ("pending", False),
])
def test_retryable(reason, retry):
    assert is_retryable(reason) is retry


def test_http_reason():
    assert [http_reason(s) for s in (404, 410, 429, 500, 503, 599)] == [
        "http_404", "http_410", "http_429", "http_5xx", "http_5xx", "http_5xx"]

"""Where the hub may send a request on a tenant's behalf: public hosts over https, unless the
operator allows a host in ``hub.toml`` (``[outbound] allow = ["host", "host:port"]``, for tests
and on-premise carriers).

A tenant chooses the base URLs its plugins call (a WooCommerce store, a carrier's API base).
Unchecked, that lets a tenant make the hub call ``http://127.0.0.1:…``, a cloud metadata
service or anything on the private network, and read the answer back through error messages.
So every outbound request is checked twice:

- before it is sent (``url_problem``): https, and no internal address literal;
- when its connection is made: the name is resolved once, the address is checked and the
  connection is made to that very address (requests-hardened pins it in urllib3's pool), so a
  name that resolves to a public address for a check and to an internal one for the connect
  (DNS rebinding) is still refused. Redirects pass through the same adapters, hop by hop.

Settings that name where a plugin sends requests (``Adapter.outbound_settings``) are also
checked when they are saved (``setting_problem``), so a mistake is a 422 naming the field
rather than a failure in the worker later.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

__all__ = [
    "ENTRY_PATTERN",
    "NOT_HTTPS",
    "NOT_PUBLIC",
    "Refused",
    "allow",
    "allowed",
    "connect_address",
    "is_public",
    "parse_entry",
    "session",
    "setting_problem",
    "url_problem",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# hub.toml's [outbound] allow entries: "host", "host:port", "[v6]" or "[v6]:port".
ENTRY_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?$"

# Ranges that Python's ``is_global`` still calls global on some 3.11 releases, or that embed
# or translate to another address (6to4, NAT64), or that are set aside (benchmarking, IETF
# protocol assignments). Nothing a carrier or a shop lives on.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT: often a cloud's internal load balancers
        "192.0.0.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "fec0::/10",  # site-local, deprecated but still routed by some networks
        "2001::/23",
        "2002::/16",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "5f00::/16",
        "3fff::/20",
    )
)
_DEFAULT_PORTS = {"https": 443, "http": 80}

_lock = threading.Lock()
_allowed: frozenset[tuple[str, int | None]] = frozenset()

_HINT = (
    " (the hub calls only public hosts over https, unless its operator allows a host in"
    " hub.toml [outbound] allow)"
)
NOT_HTTPS = "the URL must be https" + _HINT
NOT_PUBLIC = "the host is not a public address" + _HINT


class Refused(requests.exceptions.RequestException):
    """Raised inside requests when a connection would reach a host the hub may not call."""


# --- the operator's allow list ---------------------------------------------------------------


def allow(entries: Iterable[str]) -> None:
    """Set the process's allow list (the Runtime does, from hub.toml). Process-wide because
    every HttpClient — including one a bare adapter makes for itself — must obey it."""
    global _allowed
    parsed = frozenset(parse_entry(e) for e in entries)
    with _lock:
        _allowed = parsed


def allowed(host: str | None, port: int | None) -> bool:
    """Has the operator allowed this host (on any port, or on this one)?"""
    if not host:
        return False
    name = _normal(host)
    current = _allowed
    return (name, None) in current or (name, port) in current


def parse_entry(entry: str) -> tuple[str, int | None]:
    """("host", port or None) from "host", "host:port", "[v6]" or "[v6]:port"."""
    text = entry.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"not a host or host:port: {entry!r}")
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:  # a name, an IPv4 address or a bare IPv6 address
        host, port = text, ""
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"not a host or host:port: {entry!r}")
    return _normal(host), int(port) if port else None


def _normal(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


# --- what counts as public -------------------------------------------------------------------


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet: not loopback, private, link-local,
    unspecified, multicast, reserved, carrier-grade NAT, unique-local, nor an IPv6 form that
    embeds one of those (IPv4-mapped ``::ffff:127.0.0.1``, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
    ):
        return False
    return not any(address in net for net in _NOT_PUBLIC if net.version == address.version)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(_normal(host))
    except ValueError:
        return None


# --- checks ----------------------------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why a request to ``url`` may not be sent, judged without a DNS look-up (the connection
    checks the resolved address); None when it may go."""
    try:
        parts = parse_url(url)
    except LocationParseError:
        return "the URL cannot be read"
    scheme = (parts.scheme or "").lower()
    if not parts.host:
        return "the URL names no host"
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    if allowed(parts.host, port):
        return None
    if scheme != "https":
        return NOT_HTTPS
    literal = _literal(parts.host)
    if literal is not None and not is_public(literal):
        return NOT_PUBLIC
    return None


def setting_problem(value: str) -> str | None:
    """Why a saved setting naming an outbound URL (``https://host[:port]/…``) or host
    (``host[:port]``) is refused; None when it is fine. A name is resolved: one that resolves
    to an internal address is refused, one that does not resolve (yet) is accepted — a new
    store's DNS may not be live — since every connection checks again anyway."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    problem = url_problem(text)
    if problem is not None:
        return problem
    parts = parse_url(text)
    host = parts.host or ""
    port = parts.port or _DEFAULT_PORTS.get((parts.scheme or "").lower(), 443)
    if allowed(host, port) or _literal(host) is not None:
        return None
    try:
        found = socket.getaddrinfo(_normal(host), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for _family, _kind, _proto, _name, address in found:
        if not is_public(ipaddress.ip_address(str(address[0]).split("%", 1)[0])):
            return NOT_PUBLIC
    return None


def connect_address(host: str, port: int) -> str:
    """The address to open a non-HTTP connection to (an SMTP server): ``host`` resolved once
    and checked as an HTTP connection's address is, so the caller connects to that very
    address and no later look-up can swap in another (DNS rebinding). Raises Refused with
    NOT_PUBLIC for an internal address the operator has not allowed, OSError when the name
    does not resolve."""
    literal = _literal(host)
    if literal is not None:
        found = [str(literal)]
    else:
        found = [
            str(address[0]).split("%", 1)[0]
            for *_, address in socket.getaddrinfo(_normal(host), port, type=socket.SOCK_STREAM)
        ]
    if not found:
        raise OSError(f"{host} has no address")
    if allowed(host, port):
        return found[0]
    for text in found:
        if not is_public(ipaddress.ip_address(text)):
            raise Refused(NOT_PUBLIC)
    return found[0]


# --- the connection-level guard --------------------------------------------------------------


class _GuardedAdapter(IPFilterAdapter):
    """requests-hardened's adapter (resolve once, refuse a non-public address, connect to that
    address with the original name for TLS and Host), plus the hub's rules: https only, the
    stricter ``is_public`` on the pinned address, and the operator's allow list, which skips
    both. Mounted for http:// too, so a redirect to http or to an internal host is refused at
    its hop."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        parts = parse_url(request.url or "")
        scheme = (parts.scheme or "").lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
        if allowed(parts.host, port):
            return HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)
        if scheme != "https":
            raise Refused(NOT_HTTPS)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pinned = _literal(str(host_params["host"]))
        if pinned is None or not is_public(pinned):
            raise Refused(NOT_PUBLIC)
        return host_params, pool_kwargs


def session() -> requests.Session:
    """A requests Session whose every connection (redirects included) is guarded."""
    guarded = requests.Session()
    guarded.mount("https://", _GuardedAdapter(is_https_proto=True))
    guarded.mount("http://", _GuardedAdapter(is_https_proto=False))
    return guarded

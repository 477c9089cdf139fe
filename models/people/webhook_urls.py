"""Which webhook URLs Botyard may call: the server-side request forgery guard.

A webhook makes our servers send a request to a URL a user chose, so a URL that
reaches *our* network (the database, Redis, a cloud metadata service) must never be
accepted. The rules (docs/webhooks.md, "SSRF policy"): http or https only, no
credentials in the URL, at most 2048 characters, and the host must resolve, with
EVERY address it resolves to public. Literal IPs are checked the same way, after
unwrapping IPv4-mapped, NAT64, 6to4 and Teredo forms, so ``[::ffff:127.0.0.1]``
is loopback too. ``allow_loopback`` (the WEBHOOK_ALLOW_LOOPBACK setting, refused in
production) lets loopback through for tests and development; nothing else.

The check runs at creation and again at each delivery, and the delivery connects to
an address this check returned (:class:`Target`), so a DNS answer that changes
between the check and the connection cannot reach a private address.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from models.errors import Invalid

MAX_URL_LENGTH = 2048
SCHEMES = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges named for the refusal message, checked in order (the first match names it).
_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_NAMED_RANGES: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = (
    ("loopback", (_V4("127.0.0.0/8"), _V6("::1/128"))),
    ("unspecified", (_V4("0.0.0.0/8"), _V6("::/128"))),
    ("private", (_V4("10.0.0.0/8"), _V4("172.16.0.0/12"), _V4("192.168.0.0/16"), _V6("fc00::/7"))),
    ("link-local (cloud metadata)", (_V4("169.254.0.0/16"), _V6("fe80::/10"))),
    ("shared (carrier-grade NAT)", (_V4("100.64.0.0/10"),)),
    ("multicast", (_V4("224.0.0.0/4"), _V6("ff00::/8"))),
)
_NAT64 = _V6("64:ff9b::/96")

# getaddrinfo, as a module attribute so tests can stand in for DNS (an external service).
_getaddrinfo = socket.getaddrinfo


class UnsafeUrl(Invalid):
    """The URL is not one Botyard will call; the message says why (safe to show)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errors={"json": {"url": [message]}})


@dataclass(frozen=True)
class Target:
    """A vetted URL: where to connect (``addresses``, all public) and what to ask for."""

    scheme: str
    host: str  # as in the URL, lower-cased, without brackets: the Host header and TLS name
    port: int
    path: str  # path and query, at least "/"
    addresses: tuple[str, ...]


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why ``ip`` may not be called ("loopback", "private", ...), or None if it is public."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return refusal(inner, allow_loopback)
    for name, networks in _NAMED_RANGES:
        if any(ip.version == net.version and ip in net for net in networks):
            return None if name == "loopback" and allow_loopback else name
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "reserved"
    if not ip.is_global:  # documentation, benchmarking and other special-purpose ranges
        return "reserved"
    return None


def parse(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of a webhook URL, or :class:`UnsafeUrl` saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeUrl("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("The URL is not valid (bad host or port).") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeUrl("Only http and https URLs are allowed.")
    if "@" in parts.netloc:
        raise UnsafeUrl("The URL must not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrl("The URL has no host.")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # the Host header and TLS name are ASCII
        except UnicodeError as exc:
            raise UnsafeUrl("The URL's host name is not valid.") from exc
    if port == 0:
        raise UnsafeUrl("The URL's port must be between 1 and 65535.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or SCHEMES[scheme], path


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal IP resolves to itself), in DNS order."""
    try:
        infos = _getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"The URL's host {host!r} could not be resolved.") from exc
    found: list[IPAddress] = []
    for family, *_rest, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise UnsafeUrl(f"The URL's host {host!r} could not be resolved.")
    return found


def vet(url: str, allow_loopback: bool = False) -> Target:
    """Check ``url`` against the policy and resolve it; raises :class:`UnsafeUrl`.

    Every address must pass: a name that resolves to one public and one private
    address is refused (which one a client connects to is up to it, and an attacker).
    """
    scheme, host, port, path = parse(url)
    addresses = resolve(host, port)
    for ip in addresses:
        reason = refusal(ip, allow_loopback)
        if reason is not None:
            # A host name's addresses are not echoed: they could describe our own network.
            what = f"address {ip} is" if _is_literal(host) else f"host {host!r} resolves to"
            raise UnsafeUrl(
                f"Webhooks may not call this URL: {what} a {reason} address; "
                "only public addresses are allowed."
            )
    return Target(scheme, host, port, path, tuple(str(ip) for ip in addresses))


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

"""Outbound URL safety: the one place that decides which servers a URL set through the API may reach.

A workspace admin sets URLs (LM Studio, Ollama, OpenAI-compatible; later webhooks, calendars) that the
platform then calls from inside its own network. Without a guard such a URL reaches the platform itself
(`http://127.0.0.1:8000/metrics`), its database, Redis, or the cloud's metadata service (SSRF).

Rules:
- `check_url`: http/https only, a host, no user-info, and for a base URL no query or fragment (a `?` would
  swallow the path the platform appends); every address the host resolves to must be allowed.
- An address is allowed when it is public, or the operator allowed it: `EGRESS_ALLOWED_NETWORKS` (host
  names and CIDRs, any port), or the exact host and port of `OLLAMA_BASE_URL`, `LMSTUDIO_BASE_URL`,
  `OPENAI_BASE_URL` (a business running its model next to the platform is the normal case).
- At connect time (`transport()`), the host is resolved once, each address is checked, and the socket
  connects to that checked address (TLS still verifies the host name), then the peer is checked again:
  a DNS answer that changes between the check and the connection (rebinding) cannot pass.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from chatbot.exceptions import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressRefused(ValidationFailed):
    """A URL, or the address it leads to, is not one the platform may call for a workspace."""

    code = "url_not_allowed"


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _operator_origins() -> set[tuple[str, int]]:
    origins = set()
    for url in (settings.OLLAMA_BASE_URL, settings.LMSTUDIO_BASE_URL, settings.OPENAI_BASE_URL):
        try:
            parts = urlsplit(url)
            if parts.hostname:
                origins.add((parts.hostname.lower(), parts.port or DEFAULT_PORTS.get(parts.scheme, 80)))
        except ValueError:
            continue
    return origins


def _allowed_entries() -> tuple[set[str], list[Network]]:
    hosts: set[str] = set()
    networks: list[Network] = []
    for raw in settings.EGRESS_ALLOWED_NETWORKS:
        entry = str(raw).strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.add(entry)
    return hosts, networks


def _public(ip: IPAddress) -> bool:
    # An IPv6 address can carry an IPv4 one (mapped, NAT64, 6to4): judge what it leads to.
    embedded: list[IPAddress] = []
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            embedded.append(ip.ipv4_mapped)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour:
            embedded.append(ip.sixtofour)
    # is_global is False for loopback, private, link-local (169.254.169.254, the metadata service),
    # shared (100.64/10), reserved and unspecified addresses.
    return all(a.is_global and not a.is_multicast for a in [ip, *embedded])


def address_allowed(host: str, port: int, address: str) -> bool:
    """Whether a connection to `host`:`port` may go to `address` (one of the host's addresses)."""
    host = host.lower().strip("[]")
    if (host, port) in _operator_origins():
        return True
    hosts, networks = _allowed_entries()
    if host in hosts:
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return _public(ip) or any(ip in network for network in networks)


def check_url(url: str, *, base: bool = True, resolve: bool = True) -> SplitResult:
    """The URL's parts when the platform may call it; raises EgressRefused (HTTP 400) otherwise.

    A host name that does not resolve (yet) is not refused here: it cannot be reached either, and the
    connection is checked again when it is made.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EgressRefused(_("The URL is not valid.")) from None
    if any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in url):
        raise EgressRefused(_("The URL may not contain spaces, control characters or backslashes."))
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise EgressRefused(_("Enter an http:// or https:// URL with a host."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise EgressRefused(_("The URL may not carry a user name or password."))
    if base and ("?" in url or "#" in url):
        raise EgressRefused(_("A base URL may not have a query (?) or a fragment (#)."))
    if resolve:
        port = port or DEFAULT_PORTS[parts.scheme]
        try:
            addresses = _getaddrinfo(parts.hostname, port)
        except (OSError, UnicodeError):
            addresses = []
        refused = [a for a in addresses if not address_allowed(parts.hostname, port, a)]
        if refused:
            raise EgressRefused(
                _(
                    "%(host)s leads to an address of a private or internal network. "
                    "The operator can allow it in EGRESS_ALLOWED_NETWORKS."
                )
                % {"host": parts.hostname},
                details={"host": parts.hostname},
            )
    return parts


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("egress_deadline", default=None)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Every connect, read and write of guarded clients in this block ends by `at` (time.monotonic()).

    httpx's timeouts are per operation: a server dripping one byte a second would never trip them."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _left(timeout: float | None) -> float | None:
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves, checks, and connects to the checked address itself (TLS keeps the host name)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = _getaddrinfo(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        allowed = [a for a in addresses if address_allowed(host, port, a)]
        if not allowed:
            raise EgressRefused(
                f"{host} leads to an address of a private or internal network.", details={"host": host}
            )
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in allowed:
            try:
                stream = super().connect_tcp(address, port, _left(timeout), local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            peer = str(stream.get_extra_info("socket").getpeername()[0])
            if not address_allowed(host, port, peer):  # belt and braces: the socket we really have
                stream.close()
                raise EgressRefused(f"{host} connected to a refused address.", details={"host": host})
            return _DeadlineStream(stream)
        raise error


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, with every connection checked by the egress rules. Never through a proxy
    from the environment: a proxy would reach what the rules refuse."""

    def __init__(self, **kwargs: Any) -> None:
        limits: httpx.Limits = kwargs.pop("limits", httpx.Limits(max_connections=100))
        super().__init__(trust_env=False, limits=limits, **kwargs)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(),
        )


def client(**kwargs: Any) -> httpx.Client:
    """An httpx client whose connections obey the egress rules; redirects are not followed."""
    return httpx.Client(transport=GuardedTransport(), trust_env=False, follow_redirects=False, **kwargs)

"""Requests to addresses users give us (WordPress sites, webhooks, notifications), guarded
against server-side request forgery.

A URL must be `https` (plain `http` only with ALLOW_HTTP_URLS) and every address its host
resolves to must be public: loopback, private, link-local, multicast and reserved ranges (also
when wrapped in an IPv6 address: IPv4-mapped, NAT64, 6to4, Teredo) are refused unless
ALLOW_PRIVATE_URLS is set. The check runs when the URL is saved, and again inside the connection
pool each time a connection is opened (every redirect hop included): the pool's network backend
resolves the host itself and connects to the very address it checked, so a DNS answer that
changes between the check and the connection cannot reach an internal address. The URL keeps its
host name, so TLS verifies the certificate for it and connections are pooled per host name.

Answers are bounded: a whole request (its redirects included) gets `timeout` seconds, and at
most `MAX_RESPONSE_BYTES` of a body are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import certifi
import httpcore
import httpx

from app.config import Settings
from app.errors import InvalidInput

MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
# Requests that a 301 or 302 would silently turn into a GET without their body.
_NOT_REPEATED_AS_GET = {"POST", "PUT", "PATCH", "DELETE"}
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# The body headers of the answer as received; the bounded copy carries the decoded body.
_BODY_HEADERS = {b"content-encoding", b"content-length", b"transfer-encoding"}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Host and port to the addresses to try, in order (the system resolver, or a test's).
Resolver = Callable[[str, int], Awaitable[list[str]]]


class UnsafeUrl(InvalidInput):
    """The URL may not be called: wrong scheme, no host, or a non-public address."""

    code = "invalid_url"


class OutboundError(Exception):
    """The peer's answer is not one to act on (a redirect that would drop the body, an answer
    too large); another attempt would get the same."""


@dataclass(frozen=True)
class Policy:
    allow_http: bool
    allow_private: bool

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(allow_http=settings.allow_http_urls, allow_private=settings.allow_private_urls)

    def refuses(self, address: Address) -> bool:
        """Whether a connection to `address` is refused."""
        return not self.allow_private and not is_public(address)


def is_public(address: Address) -> bool:
    """A globally routed unicast address, also inside any IPv6 form that wraps an IPv4 one."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = _wrapped_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return True


def _wrapped_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in (*_NAT64, _IPV4_COMPATIBLE)):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_syntax(url: str, policy: Policy, field: str = "url") -> httpx.URL:
    """The parts of the check that need no DNS: scheme, host, no credentials in the URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _unsafe(field, f"not a valid URL: {exc}") from None
    allowed = {"https", "http"} if policy.allow_http else {"https"}
    if parsed.scheme not in allowed:
        raise _unsafe(field, f"must use {' or '.join(sorted(allowed))}, not {parsed.scheme!r}")
    if not parsed.host:
        raise _unsafe(field, "has no host")
    if parsed.userinfo:
        raise _unsafe(field, "must not carry a user name or password; use the credential fields")
    return parsed


async def check_url(
    url: str, policy: Policy, field: str = "url", *, resolver: Resolver = system_resolver
) -> httpx.URL:
    """The whole check, DNS included (for saving a URL); raises `UnsafeUrl` naming `field`."""
    parsed = check_syntax(url, policy, field)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        await allowed_addresses(parsed.host, port, policy, resolver)
    except socket.gaierror as exc:
        raise _unsafe(field, f"host {parsed.host!r} does not resolve: {exc.strerror}") from None
    except UnsafeUrl as exc:
        raise _unsafe(field, exc.message) from None
    return parsed


async def allowed_addresses(host: str, port: int, policy: Policy, resolver: Resolver) -> list[str]:
    """The addresses to connect to, in the resolver's order, once every one of them is allowed
    (a host with one internal address among public ones is refused: which one a connection
    ends up using is not ours to choose). Raises `UnsafeUrl`, or `socket.gaierror` when the
    host does not resolve."""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = [ipaddress.ip_address(answer) for answer in await resolver(host, port)]
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    if any(policy.refuses(address) for address in addresses):
        # Which address it was stays unsaid: echoing it would let a user map internal DNS.
        raise UnsafeUrl(f"host {host!r} does not resolve to a public address")
    return list(dict.fromkeys(str(address) for address in addresses))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows, resolving hosts itself."""

    def __init__(self, policy: Policy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await allowed_addresses(host, port, self._policy, self._resolver)
        except socket.gaierror as exc:
            # At send time a lookup failure is the network's (EAI_AGAIN passes): retryable.
            raise httpcore.ConnectError(f"host {host!r} does not resolve: {exc.strerror}") from None
        # Each checked address in turn: an IPv6 answer first on a host without IPv6 routes
        # must not fail a site that also answers on IPv4.
        for address in addresses[:-1]:
            try:
                return await self._connect(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await self._connect(addresses[-1], port, timeout, local_address, socket_options)

    async def _connect(
        self,
        address: str,
        port: int,
        timeout: float | None,  # noqa: ASYNC109 (passed on to httpcore)
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._network.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("connections to unix sockets are not made")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool with the guarded network backend. httpx takes no
    network backend of its own, so the pool it built is replaced by one that has it."""

    def __init__(self, policy: Policy, resolver: Resolver) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            network_backend=_GuardedBackend(policy, resolver),
        )


class OutboundClient:
    """An httpx client that checks every hop, connects only to checked addresses and bounds
    what it waits for and reads."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float | None = None,
        resolver: Resolver = system_resolver,
        policy: Policy | None = None,
    ) -> None:
        self._policy = policy or Policy.of(settings)
        self._timeout = timeout or settings.publish_timeout_seconds
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(self._policy, resolver),
            timeout=self._timeout,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        """Send, following up to `MAX_REDIRECTS` redirects, each one checked like the first;
        the answer's body is read (at most `MAX_RESPONSE_BYTES`) before it is returned.

        A 303 turns the next hop into a GET without a body, as browsers and httpx do; a 301 or
        302 answer to a request with a body raises `OutboundError` rather than dropping the body
        (the peer never got it: its URL needs updating). Credentials go only to the origin they
        were given for: a redirect to another scheme, host or port drops them.
        """
        try:
            async with asyncio.timeout(self._timeout):
                return await self._follow(method, url, headers, content, auth)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no complete answer within {self._timeout:g} s") from None

    async def _follow(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        content: bytes | None,
        auth: tuple[str, str] | None,
    ) -> httpx.Response:
        origin = check_syntax(url, self._policy)
        for _ in range(MAX_REDIRECTS + 1):
            target = check_syntax(url, self._policy)
            request = self._client.build_request(method, target, headers=headers, content=content)
            if auth is not None:
                request = next(httpx.BasicAuth(*auth).auth_flow(request))
            response = await self._client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECTS or location is None:
                    return await _bounded(response)
            finally:
                await response.aclose()
            url = str(target.join(location))
            if response.status_code in (301, 302) and method in _NOT_REPEATED_AS_GET:
                raise OutboundError(
                    f"answered {response.status_code}, moved to {url}: the {method} was not "
                    "sent there; update the URL"
                )
            if _origin(httpx.URL(url)) != _origin(origin):
                auth = None
            if response.status_code == 303:
                method, content = "GET", None
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=None)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> OutboundClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


async def _bounded(response: httpx.Response) -> httpx.Response:
    """The answer with its body read, or `OutboundError` past `MAX_RESPONSE_BYTES`."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise OutboundError(f"answered more than {MAX_RESPONSE_BYTES // 1024} KiB")
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _BODY_HEADERS]
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _unsafe(field: str, message: str) -> UnsafeUrl:
    return UnsafeUrl(f"{field} {message}", details=[{"field": field, "message": message}])

"""Requests to addresses users give us (WordPress sites, webhooks, notifications), guarded
against server-side request forgery.

A URL must be `https` (plain `http` only with ALLOW_HTTP_URLS) and every address its host
resolves to must be public: loopback, private, link-local, multicast and reserved ranges are
refused unless ALLOW_PRIVATE_URLS is set. The check runs when the URL is saved and again on every
request and every redirect hop, and the request connects to the very address that was checked
(the host name still goes in the `Host` header and TLS SNI, so certificates verify as usual), so a
DNS answer that changes between the check and the connection cannot reach an internal address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpx

from app.config import Settings
from app.errors import InvalidInput

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


class UnsafeUrl(InvalidInput):
    """The URL may not be called: wrong scheme, no host, or a non-public address."""

    code = "invalid_url"


@dataclass(frozen=True)
class Policy:
    allow_http: bool
    allow_private: bool

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(allow_http=settings.allow_http_urls, allow_private=settings.allow_private_urls)


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


async def check_url(url: str, policy: Policy, field: str = "url") -> httpx.URL:
    """The whole check, DNS included (for saving a URL); raises `UnsafeUrl` naming `field`."""
    parsed = check_syntax(url, policy, field)
    await resolve(parsed, policy, field)
    return parsed


async def resolve(url: httpx.URL, policy: Policy, field: str = "url") -> str:
    """The address to connect to: the host's first address, once all of them are allowed."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise _unsafe(field, f"host {host!r} does not resolve: {exc.strerror}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not policy.allow_private:
        for address in addresses:
            if not address.is_global or address.is_multicast:
                raise _unsafe(
                    field,
                    f"host {host!r} resolves to {address}, a loopback, private or reserved address",
                )
    return str(addresses[0])


class OutboundClient:
    """An httpx client that checks every hop and connects to the checked address."""

    def __init__(self, settings: Settings, *, timeout: float | None = None) -> None:
        self._policy = Policy.of(settings)
        self._client = httpx.AsyncClient(
            timeout=timeout or settings.publish_timeout_seconds, follow_redirects=False
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
        """Send, following up to `MAX_REDIRECTS` redirects, each one checked like the first.

        A 303 (and a 301/302 answer to a POST) turns the next hop into a GET without a body, as
        browsers and httpx do. Credentials go only to the origin they were given for: a redirect
        to another scheme, host or port drops them.
        """
        origin = check_syntax(url, self._policy)
        for _ in range(MAX_REDIRECTS + 1):
            target = check_syntax(url, self._policy)
            address = await resolve(target, self._policy)
            response = await self._send(method, target, address, headers, content, auth)
            if response.status_code not in _REDIRECTS or "location" not in response.headers:
                return response
            await response.aclose()
            url = str(target.join(response.headers["location"]))
            if _origin(httpx.URL(url)) != _origin(origin):
                auth = None
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, content = "GET", None
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=None)

    async def _send(
        self,
        method: str,
        target: httpx.URL,
        address: str,
        headers: dict[str, str] | None,
        content: bytes | None,
        auth: tuple[str, str] | None,
    ) -> httpx.Response:
        pinned = target.copy_with(host=address)
        extensions: dict[str, Any] = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        request = self._client.build_request(
            method,
            pinned,
            headers={**(headers or {}), "Host": _host_header(target)},
            content=content,
            extensions=extensions,
        )
        if auth is not None:
            request = next(httpx.BasicAuth(*auth).auth_flow(request))
        return await self._client.send(request)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> OutboundClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _host_header(url: httpx.URL) -> str:
    default = 443 if url.scheme == "https" else 80
    return url.host if url.port in (None, default) else f"{url.host}:{url.port}"


def _unsafe(field: str, message: str) -> UnsafeUrl:
    return UnsafeUrl(f"{field} {message}", details=[{"field": field, "message": message}])

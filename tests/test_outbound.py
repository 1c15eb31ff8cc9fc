"""Requests to user-given URLs: the SSRF guard, redirects, and where credentials may go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from app.config import Settings
from app.outbound import OutboundClient, Policy, UnsafeUrl, check_url

STRICT = Policy(allow_http=False, allow_private=False)


class Peer:
    """A real HTTP server on 127.0.0.1 answering from a table of path → (status, headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str]]] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                peer.seen.append((self.command, self.path, dict(self.headers)))
                status, headers = peer.routes.get(self.path, (200, {}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peers() -> Iterator[tuple[Peer, Peer]]:
    first, second = Peer(), Peer()
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def open_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_private_urls": True, "allow_http_urls": True})


class TestTheGuard:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("http://93.184.215.14/hook", "must use https"),
            ("ftp://93.184.215.14/", "must use https"),
            ("https://user:pw@93.184.215.14/", "user name or password"),
            ("https://127.0.0.1/", "loopback, private or reserved"),
            ("https://localhost/", "loopback, private or reserved"),
            ("https://10.1.2.3/", "loopback, private or reserved"),
            ("https://192.168.0.10/", "loopback, private or reserved"),
            ("https://169.254.169.254/latest/meta-data/", "loopback, private or reserved"),
            ("https://[::1]/", "loopback, private or reserved"),
            ("https://[fd00::1]/", "loopback, private or reserved"),
            ("https://0.0.0.0/", "loopback, private or reserved"),
            ("https://no-such-host.invalid/", "does not resolve"),
            ("https:///path-only", "has no host"),
        ],
    )
    async def test_refuses_what_may_reach_inside_or_leak(self, url: str, reason: str) -> None:
        with pytest.raises(UnsafeUrl) as refused:
            await check_url(url, STRICT, field="endpoint_url")
        assert reason in refused.value.message
        assert refused.value.details[0]["field"] == "endpoint_url"

    async def test_accepts_a_public_https_address(self) -> None:
        parsed = await check_url("https://93.184.215.14/wp", STRICT)
        assert parsed.host == "93.184.215.14"

    async def test_private_and_http_pass_only_where_allowed(self) -> None:
        loose = Policy(allow_http=True, allow_private=True)
        assert (await check_url("http://127.0.0.1:8080/hook", loose)).port == 8080

    async def test_the_client_refuses_a_private_address_at_send_time(
        self, settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        """A URL saved while it resolved publicly may point inside later: every request is
        checked again."""
        first, _ = peers
        strict = settings.model_copy(update={"allow_http_urls": True})
        async with OutboundClient(strict) as client:
            with pytest.raises(UnsafeUrl):
                await client.request("GET", first.url("/"))
        assert first.seen == []


class TestRedirects:
    async def test_credentials_stay_on_their_origin(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, second = peers
        first.routes["/start"] = (302, {"Location": "/same"})
        first.routes["/same"] = (307, {"Location": second.url("/elsewhere")})
        async with OutboundClient(open_settings) as client:
            response = await client.request("GET", first.url("/start"), auth=("ann", "secret"))
        assert response.status_code == 200
        assert [path for _, path, _ in first.seen] == ["/start", "/same"]
        assert all("Authorization" in headers for _, _, headers in first.seen)
        assert [(m, p) for m, p, _ in second.seen] == [("GET", "/elsewhere")]
        assert "Authorization" not in second.seen[0][2]

    async def test_a_303_turns_a_post_into_a_get(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, _ = peers
        first.routes["/submit"] = (303, {"Location": "/done"})
        async with OutboundClient(open_settings) as client:
            await client.request("POST", first.url("/submit"), content=b"{}")
        assert [(m, p) for m, p, _ in first.seen] == [("POST", "/submit"), ("GET", "/done")]

    async def test_a_redirect_loop_ends(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, _ = peers
        first.routes["/loop"] = (302, {"Location": "/loop"})
        async with OutboundClient(open_settings) as client:
            with pytest.raises(httpx.TooManyRedirects):
                await client.request("GET", first.url("/loop"))

    async def test_connects_to_the_checked_address_and_names_the_host(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, _ = peers
        async with OutboundClient(open_settings) as client:
            await client.request("GET", first.url("/", host="localhost"))
        assert first.seen[0][2]["Host"] == f"localhost:{first.port}"

"""Requests to user-given URLs: the SSRF guard, redirects, and where credentials may go."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from app.config import Settings
from app.outbound.client import (
    MAX_RESPONSE_BYTES,
    Address,
    OutboundClient,
    OutboundError,
    Policy,
    UnsafeUrl,
    check_url,
)

STRICT = Policy(allow_http=False, allow_private=False)


class Peer:
    """A real HTTP/1.1 server (keep-alive) answering from a table of path → (status, headers,
    body); it records each request with the client's port, which tells connections apart."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.client_ports: list[int] = []
        self.trickle: dict[str, float] = {}
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                peer.seen.append((self.command, self.path, dict(self.headers)))
                peer.client_ports.append(self.client_address[1])
                status, headers, body = peer.routes.get(self.path, (200, {}, b"ok"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                pause = peer.trickle.get(self.path)
                if pause is None:
                    self.wfile.write(body)
                    return
                for byte in range(len(body)):
                    self.wfile.write(body[byte : byte + 1])
                    self.wfile.flush()
                    time.sleep(pause)

            do_GET = do_POST = _answer

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FirstPeerOnly(Policy):
    """Loopback is refused as a public-only policy refuses it, except 127.0.0.1: the peer a
    test starts. A second peer on 127.0.0.2 then stands for an internal address."""

    def refuses(self, address: Address) -> bool:
        return str(address) != "127.0.0.1"


ONLY_FIRST = FirstPeerOnly(allow_http=True, allow_private=False)


class Dns:
    """A resolver whose answers the test sets (host → addresses), or a failure for a host."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.failing: set[str] = set()

    async def __call__(self, host: str, port: int) -> list[str]:
        if host in self.failing:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return self.answers[host]


@pytest.fixture
def peers() -> Iterator[tuple[Peer, Peer]]:
    first, second = Peer(), Peer("127.0.0.2")
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
            ("https://127.0.0.1/", "does not resolve to a public address"),
            ("https://localhost/", "does not resolve to a public address"),
            ("https://10.1.2.3/", "does not resolve to a public address"),
            ("https://192.168.0.10/", "does not resolve to a public address"),
            ("https://169.254.169.254/latest/meta-data/", "does not resolve to a public address"),
            ("https://[::1]/", "does not resolve to a public address"),
            ("https://[fd00::1]/", "does not resolve to a public address"),
            ("https://0.0.0.0/", "does not resolve to a public address"),
            ("https://[::ffff:127.0.0.1]/", "does not resolve to a public address"),
            ("https://[64:ff9b::a9fe:a9fe]/", "does not resolve to a public address"),  # NAT64
            ("https://[2002:7f00:1::]/", "does not resolve to a public address"),  # 6to4
            ("https://[::10.0.0.1]/", "does not resolve to a public address"),  # IPv4-compatible
            (
                "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
                "does not resolve to a public address",
            ),
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
        wrapped = await check_url("https://[64:ff9b::5db8:d70e]/wp", STRICT)  # NAT64, public
        assert wrapped.host == "64:ff9b::5db8:d70e"

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
        first.routes["/start"] = (302, {"Location": "/same"}, b"")
        first.routes["/same"] = (307, {"Location": second.url("/elsewhere")}, b"")
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
        first.routes["/submit"] = (303, {"Location": "/done"}, b"")
        async with OutboundClient(open_settings) as client:
            await client.request("POST", first.url("/submit"), content=b"{}")
        assert [(m, p) for m, p, _ in first.seen] == [("POST", "/submit"), ("GET", "/done")]

    async def test_a_redirect_loop_ends(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, _ = peers
        first.routes["/loop"] = (302, {"Location": "/loop"}, b"")
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


class TestEveryConnectionIsChecked:
    async def test_a_redirect_to_an_internal_address_is_refused_before_connecting(
        self, settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, second = peers
        first.routes["/hook"] = (302, {"Location": second.url("/admin")}, b"")
        async with OutboundClient(settings, policy=ONLY_FIRST) as client:
            with pytest.raises(UnsafeUrl) as refused:
                await client.request("GET", first.url("/hook"))
        assert "does not resolve to a public address" in refused.value.message
        assert [path for _, path, _ in first.seen] == ["/hook"]
        assert second.seen == []

    async def test_a_host_that_resolves_inside_after_it_was_saved_is_refused(
        self, settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        """DNS rebinding: the name passed the check when saved, then points inside."""
        _, second = peers
        dns = Dns({"hooks.example": ["127.0.0.1"]})
        url = f"http://hooks.example:{second.port}/hook"
        await check_url(url, ONLY_FIRST, resolver=dns)

        dns.answers["hooks.example"] = ["127.0.0.2"]
        async with OutboundClient(settings, policy=ONLY_FIRST, resolver=dns) as client:
            with pytest.raises(UnsafeUrl):
                await client.request("POST", url, content=b"{}")
        assert second.seen == []

    async def test_a_lookup_that_fails_at_send_time_is_a_network_error(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        """A resolver outage is worth another attempt; it is no verdict on the URL."""
        first, _ = peers
        dns = Dns({"hooks.example": ["127.0.0.1"]})
        dns.failing.add("hooks.example")
        async with OutboundClient(open_settings, resolver=dns) as client:
            with pytest.raises(httpx.ConnectError, match="Temporary failure"):
                await client.request("GET", f"http://hooks.example:{first.port}/")

    async def test_each_checked_address_is_tried_in_turn(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        """A host whose first answer does not connect (IPv6 without a route, a dead replica) is
        reached on the next one."""
        first, _ = peers
        # Nothing listens on 127.0.0.3: its connection is refused.
        dns = Dns({"site.example": ["127.0.0.3", "127.0.0.1"]})
        async with OutboundClient(open_settings, resolver=dns) as client:
            response = await client.request("GET", f"http://site.example:{first.port}/")
        assert response.status_code == 200
        assert len(first.seen) == 1

    async def test_connections_are_pooled_per_host_name_not_per_address(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        """Two sites on one address (a CDN) never share a connection: a session verified for
        one host never carries the other's credentials."""
        first, _ = peers
        dns = Dns({"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
        async with OutboundClient(open_settings, resolver=dns) as client:
            for host in ("a.example", "a.example", "b.example"):
                await client.request("GET", first.url("/", host=host), auth=(host, "pw"))
        hosts = [headers["Host"] for _, _, headers in first.seen]
        assert hosts == [f"{h}:{first.port}" for h in ("a.example", "a.example", "b.example")]
        a_first, a_again, b = first.client_ports
        assert a_first == a_again, "one host's requests share its connection"
        assert b != a_first


class TestWhatIsReadOfAnAnswer:
    async def test_a_post_moved_by_301_or_302_is_not_resent_as_a_bodiless_get(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, _ = peers
        first.routes["/old"] = (301, {"Location": "/new"}, b"")
        async with OutboundClient(open_settings) as client:
            with pytest.raises(OutboundError, match=r"answered 301, moved to .*/new"):
                await client.request("POST", first.url("/old"), content=b'{"event": "x"}')
        assert [(m, p) for m, p, _ in first.seen] == [("POST", "/old")]

    async def test_an_answer_larger_than_the_bound_is_refused(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        first, _ = peers
        first.routes["/huge"] = (200, {}, b"x" * (MAX_RESPONSE_BYTES + 1))
        async with OutboundClient(open_settings) as client:
            with pytest.raises(OutboundError, match="more than 2048 KiB"):
                await client.request("GET", first.url("/huge"))

    async def test_an_answer_that_trickles_in_times_out_as_a_whole(
        self, open_settings: Settings, peers: tuple[Peer, Peer]
    ) -> None:
        """Each byte comes within the read timeout; the request as a whole still ends."""
        first, _ = peers
        first.routes["/slow"] = (200, {}, b"x" * 40)
        first.trickle["/slow"] = 0.05
        async with OutboundClient(open_settings, timeout=0.5) as client:
            with pytest.raises(httpx.ReadTimeout, match=r"no complete answer within 0\.5 s"):
                await client.request("GET", first.url("/slow"))

"""The listening socket the test servers bind before they start, so that a request made at once
waits in the backlog instead of being refused."""

from __future__ import annotations

import socket


def listening(backlog: int) -> socket.socket:
    """A TCP socket listening on a free port of 127.0.0.1.

    Made with the TCP protocol named: asyncio sets TCP_NODELAY only on the connections of a socket
    whose `proto` says TCP, and one made with the default 0 leaves Nagle's algorithm on. A response
    written in two parts (headers, then body) then waits for the client's delayed ACK: 40 ms added
    to every request after the first on a kept-alive connection.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock

"""A fake OpenAI-compatible API: real HTTP on 127.0.0.1, an ephemeral port, its own thread.

    async with OpenAICompatibleServer(latency_ms=200) as server:
        settings = Settings(ai_provider="openai", ai_base_url=server.base_url, ...)

It speaks `POST /v1/chat/completions` and `POST /v1/images/generations`. By default it answers
valid outputs computed from the request: it reads the input document from the first user
message, dispatches on the `response_format` schema's name, lets the local provider do the
work, and answers its output as the assistant's JSON with a `usage` block (one token a word);
images are the local provider's PNGs as `b64_json`, with GPT-image style usage.

Tests script it: `server.script(Reply.error(429, ..., headers={"Retry-After": "1"}), ...)`
queues answers for the next requests in order (an HTTP error, given assistant content, a delay,
an image by URL served from `/files/`), and `server.always` answers every request after the
script. `server.requests` records what arrived, with arrival times (`time.monotonic()`);
`server.in_flight` and `server.max_in_flight` count requests being answered (the benchmark's
figure), and `server.in_flight_log` keeps how many were, after each change, with its time.
`latency_ms` makes every answer wait that long; with `jitter`, a lognormal time of that mean
whose 99th percentile is 5 times the mean (real providers' latencies vary that much).

The server runs uvicorn on an event loop of its own, in a thread: it handles hundreds of
concurrent requests without taking time from the loop of the code under test, and it installs
no signal handlers. Only Starlette and uvicorn (both FastAPI's) and the local provider are used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import math
import random
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.ai.local import LocalProvider
from app.ai.openai.prompts import (
    ARTICLE,
    CLUSTERING,
    IDEAS,
    IMAGE_PROMPTS,
    ArticleInput,
    ClusteringInput,
    IdeasInput,
    ImagePromptsInput,
)
from app.ai.schemas import ImageOut
from tests.servers.sockets import listening

_INPUTS = {prompt.name: prompt.input for prompt in (CLUSTERING, IDEAS, ARTICLE, IMAGE_PROMPTS)}
# The lognormal's sigma for which p99 / mean = 5: the smaller root of
# sigma^2 / 2 - z99 sigma + ln 5 = 0, with z99 the standard normal's 99th percentile.
_Z99 = 2.3263478740408408
JITTER_SIGMA = _Z99 - math.sqrt(_Z99**2 - 2 * math.log(5))
# What GPT image models report for one 1024x1024 image at low quality.
IMAGE_OUTPUT_TOKENS = 272


@dataclass(frozen=True)
class Reply:
    """How to answer one request; the defaults answer it normally."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    # A JSON body to answer instead of the computed one (with `status`).
    body: Any = None
    # Chat only: this assistant message content instead of the computed output.
    content: str | None = None
    # Seconds to wait before answering, on top of `latency_ms`.
    delay: float = 0
    # Images only: answer a URL (served by this server under /files/) instead of `b64_json`.
    image_url: bool = False

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An error as the OpenAI API answers it."""
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return cls(status=status, headers=headers or {}, body=body)

    @classmethod
    def invalid_json(cls) -> Reply:
        return cls(content='{"clusters": [ this is not JSON')


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    body: dict[str, Any]
    headers: Mapping[str, str]
    arrived: float

    @property
    def schema_name(self) -> str | None:
        """Which text function was asked (the `response_format` schema's name)."""
        schema = (self.body.get("response_format") or {}).get("json_schema") or {}
        name = schema.get("name")
        return str(name) if name is not None else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def user_input(self) -> str:
        """The first user message: the input document."""
        return next(str(m["content"]) for m in self.messages if m.get("role") == "user")


class OpenAICompatibleServer:
    def __init__(
        self,
        *,
        latency_ms: int = 0,
        jitter: bool = False,
        seed: int = 1,
        image_variants: int | None = None,
    ) -> None:
        self.latency = latency_ms / 1000
        self.jitter = jitter
        # With N: at most N images of each shape are rendered, then answered again (by the
        # prompt's hash), so that a benchmark's server spends no CPU drawing: a hosted image
        # model's work is not done on the machine under measure.
        self.image_variants = image_variants
        self._rendered: dict[tuple[int, bool], ImageOut] = {}
        self._random = random.Random(seed)  # noqa: S311 - latencies, not secrets
        self.requests: list[Received] = []
        self.always: Reply | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_log: list[tuple[float, int]] = []
        self._script: deque[Reply] = deque()
        self._files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._local = LocalProvider()
        self._socket: socket.socket | None = None
        self._origin: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None

    @property
    def origin(self) -> str:
        assert self._origin is not None, "the server is not started"
        return self._origin

    @property
    def base_url(self) -> str:
        """What AI_BASE_URL should be."""
        return f"{self.origin}/v1"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests (of any path) with these, in order."""
        self._script.extend(replies)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def __aenter__(self) -> OpenAICompatibleServer:
        # Bound and listening before the thread starts: connections wait in the backlog, so the
        # URL works at once, with no waiting for uvicorn to come up.
        sock = listening(backlog=2048)
        self._socket = sock
        host, port = sock.getsockname()[:2]
        self._origin = f"http://{host}:{port}"
        config = uvicorn.Config(
            self._app(),
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            backlog=2048,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="openai-compatible", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        if self._loop is not None and self._closing is not None:
            # Requests still waiting out a delay answer now, so the shutdown need not wait.
            self._loop.call_soon_threadsafe(self._closing.set)
        await asyncio.to_thread(self._thread.join)
        if self._socket is not None:
            self._socket.close()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        assert self._server is not None
        assert self._socket is not None
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        await self._server.serve(sockets=[self._socket])

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/images/generations", self._images, methods=["POST"]),
                Route("/files/{name}", self._file, methods=["GET"]),
                Route("/stats", self._stats, methods=["GET"]),
            ]
        )

    async def _stats(self, _: Request) -> Response:
        counts = {"in_flight": self.in_flight, "max_in_flight": self.max_in_flight}
        return JSONResponse({**counts, "requests": len(self.requests)})

    async def _chat(self, request: Request) -> Response:
        return await self._handle(request, self._chat_answer)

    async def _images(self, request: Request) -> Response:
        return await self._handle(request, self._image_answer)

    async def _file(self, request: Request) -> Response:
        data = self._files.get(request.path_params["name"])
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="image/png")

    async def _handle(self, request: Request, answer: Any) -> Response:
        arrived = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.in_flight_log.append((arrived, self.in_flight))
        try:
            body = await request.json()
            self.requests.append(Received(request.url.path, body, dict(request.headers), arrived))
            reply = self._next_reply()
            await self._wait(self._latency() + reply.delay)
            if reply.body is not None:
                return JSONResponse(reply.body, reply.status, headers=dict(reply.headers))
            try:
                content: dict[str, Any] = await answer(body, reply)
            except (ValidationError, KeyError, StopIteration) as exc:
                return JSONResponse(Reply.error(400, f"bad request: {exc}").body, 400)
            return JSONResponse(content, reply.status, headers=dict(reply.headers))
        finally:
            self.in_flight -= 1
            self.in_flight_log.append((time.monotonic(), self.in_flight))

    def _latency(self) -> float:
        if not self.jitter or self.latency <= 0:
            return self.latency
        mu = math.log(self.latency) - JITTER_SIGMA**2 / 2  # so that the mean is `latency`
        return self._random.lognormvariate(mu, JITTER_SIGMA)

    def _next_reply(self) -> Reply:
        try:
            return self._script.popleft()
        except IndexError:
            return self.always or Reply()

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _chat_answer(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        content = reply.content
        if content is None:
            content = await self._compute(body)
        prompt_tokens = sum(_words(m.get("content")) for m in body["messages"])
        completion_tokens = _words(content)
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def _compute(self, body: dict[str, Any]) -> str:
        """The local provider's output for the request's input document, as JSON."""
        name = body["response_format"]["json_schema"]["name"]
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        payload = _INPUTS[name].model_validate_json(user)
        output: BaseModel
        match payload:
            case ClusteringInput():
                output = (await self._local.cluster_keywords(payload.keywords)).output
            case IdeasInput():
                output = (await self._local.generate_ideas(payload.cluster)).output
            case ArticleInput():
                output = (await self._local.generate_content(payload.brief)).output
            case ImagePromptsInput():
                answer = await self._local.generate_image_prompts(
                    payload.article, payload.in_article_count
                )
                output = answer.output
            case _:
                raise KeyError(name)
        return output.model_dump_json()

    async def _image_answer(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        prompt = str(body["prompt"])
        width, _, height = str(body.get("size") or "1024x1024").partition("x")
        featured = width.isdigit() and height.isdigit() and int(width) > int(height)
        image = await self._image(prompt, featured)
        if reply.image_url:
            name = f"{next(self._ids)}.png"
            self._files[name] = image.data
            return {"created": int(time.time()), "data": [{"url": f"{self.origin}/files/{name}"}]}
        words = _words(prompt)
        return {
            "created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(image.data).decode()}],
            "usage": {
                "input_tokens": words,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": words},
                "output_tokens": IMAGE_OUTPUT_TOKENS,
                "total_tokens": words + IMAGE_OUTPUT_TOKENS,
            },
        }

    async def _image(self, prompt: str, featured: bool) -> ImageOut:
        if self.image_variants is None:
            return (await self._local.generate_image(prompt, featured=featured)).output
        variant = (zlib.crc32(prompt.encode()) % self.image_variants, featured)
        if variant not in self._rendered:
            answer = await self._local.generate_image(prompt, featured=featured)
            self._rendered[variant] = answer.output
        return self._rendered[variant]


def _words(text: object) -> int:
    return len(str(text).split()) if text else 0


async def _serve_until_stopped(latency_ms: int, jitter: bool, image_variants: int | None) -> None:
    server = OpenAICompatibleServer(
        latency_ms=latency_ms, jitter=jitter, image_variants=image_variants
    )
    async with server:
        print(server.base_url, flush=True)
        await asyncio.Event().wait()


def main() -> None:
    """`python -m tests.servers.openai_compatible --latency-ms L [--latency-jitter]`: serve until
    killed, in a process of its own (the benchmark's way: its work then takes no time from the
    process it measures). Prints the base URL; `GET /stats` counts the requests in flight."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--latency-jitter", action="store_true", help="lognormal latencies of mean L, p99 5 L"
    )
    parser.add_argument(
        "--image-variants",
        type=int,
        default=None,
        help="render at most N images of each shape and answer them again",
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(args.latency_ms, args.latency_jitter, args.image_variants))


if __name__ == "__main__":
    main()

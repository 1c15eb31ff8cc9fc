"""A webhook: the article as JSON, POSTed and signed (`app.outbound.signing`).

The delivery id is the same on every attempt of a content's publication (`content:{id}:publish`),
so a receiver drops a delivery it has already processed; a fresh timestamp and signature go with
each attempt. Any 2xx means published. A receiver may answer `{"id": ..., "url": ...}`, which is
stored as the article's external id and URL.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import httpx

from app.models.publishing import IntegrationKind
from app.outbound.signing import signed_headers
from app.publishing.publishers.base import Article, Destination, Published, PublishError, Transport

EVENT = "content.published"
PING_EVENT = "ping"


def delivery_id(content_id: int) -> str:
    return f"content:{content_id}:publish"


def payload(article: Article) -> dict[str, Any]:
    return {
        "event": EVENT,
        "delivery_id": delivery_id(article.content_id),
        "id": article.content_id,
        "site_id": article.site_id,
        "title": article.title,
        "html": article.html,
        "meta_title": article.meta_title,
        "meta_description": article.meta_description,
        "word_count": article.word_count,
        "scheduled_publish_at": _iso(article.scheduled_publish_at),
        "published_at": _iso(article.published_at),
        "images": [
            {"type": image.image_type, "position": image.position, "url": image.url}
            for image in article.images
        ],
    }


class WebhookPublisher:
    kind = IntegrationKind.WEBHOOK.value

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def publish(self, article: Article, destination: Destination) -> Published:
        secret = destination.secret
        if not secret:
            raise PublishError("the webhook integration has no signing secret")
        body = json.dumps(payload(article), separators=(",", ":")).encode()
        delivery = delivery_id(article.content_id)

        async def deliver() -> httpx.Response:
            return await self._transport.once(
                "POST",
                destination.endpoint_url,
                what="the webhook",
                headers=signed_headers(secret, body, delivery),
                content=body,
                secret=secret,
            )

        response = await self._transport.retrying(deliver)
        return _receipt(response)

    async def check(self, destination: Destination) -> str:
        """A signed `{"event": "ping"}`, with a delivery id of its own."""
        if not destination.secret:
            raise PublishError("the webhook integration has no signing secret")
        body = json.dumps({"event": PING_EVENT}).encode()
        await self._transport.once(
            "POST",
            destination.endpoint_url,
            what="the webhook",
            headers=signed_headers(destination.secret, body, f"ping:{uuid.uuid4().hex}"),
            content=body,
            secret=destination.secret,
        )
        return "the webhook accepted a signed ping"


def _receipt(response: httpx.Response) -> Published:
    """The receiver's `{id, url}` where it gave them; an answer without them is fine too."""
    try:
        answer = response.json()
    except ValueError:
        return Published()
    if not isinstance(answer, dict):
        return Published()
    external_id, url = answer.get("id"), answer.get("url")
    return Published(
        external_id=str(external_id)[:200] if isinstance(external_id, str | int) else None,
        external_url=url[:2000] if isinstance(url, str) else None,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None

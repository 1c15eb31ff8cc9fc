"""Which publisher an integration's kind stands for: an explicit table, so a test can add one."""

from __future__ import annotations

from collections.abc import Callable

from app.publishing.publishers.base import Publisher, PublishError, Transport
from app.publishing.publishers.none import NonePublisher
from app.publishing.publishers.webhook import WebhookPublisher
from app.publishing.publishers.wordpress import WordPressPublisher

PUBLISHERS: dict[str, Callable[[Transport], Publisher]] = {
    NonePublisher.kind: NonePublisher,
    WordPressPublisher.kind: WordPressPublisher,
    WebhookPublisher.kind: WebhookPublisher,
}


def publisher_for(kind: str, transport: Transport) -> Publisher:
    try:
        factory = PUBLISHERS[kind]
    except KeyError:
        raise PublishError(f"no publisher for integration kind {kind!r}") from None
    return factory(transport)

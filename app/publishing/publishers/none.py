"""No publisher: the site takes its articles from the API, so a due article is simply marked
published here."""

from __future__ import annotations

from app.models.publishing import IntegrationKind
from app.publishing.publishers.base import Article, Destination, Published, Transport


class NonePublisher:
    kind = IntegrationKind.NONE.value

    def __init__(self, transport: Transport) -> None:
        del transport  # nothing to send

    async def publish(self, article: Article, destination: Destination) -> Published:
        return Published()

    async def check(self, destination: Destination) -> str:
        return "nothing to connect to: due articles are marked published"

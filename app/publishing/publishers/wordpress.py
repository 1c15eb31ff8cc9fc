"""WordPress through its REST API, authenticated with an application password (basic auth).

Each generated image is uploaded to `/wp-json/wp/v2/media`; the featured one becomes the post's
`featured_media`, the in-article ones are placed into the HTML (the pipeline's HTML carries no
images: in-article image n goes right after the n-th `<h2>`, or at the end when there are fewer
headings). The post is created published, with the meta description as its excerpt.

Never twice: the post gets a slug that names the content (`...-ca{content_id}`), and before
creating it (on every attempt, also after a worker died mid-publish) the publisher looks the slug
up with `status=any`; a post found is the one an earlier attempt created. Media uploaded by an
attempt that then failed are left in the media library (harmless, and visible there).
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from html import escape
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.models.publishing import IntegrationKind
from app.publishing.publishers.base import (
    Article,
    ArticleImage,
    Destination,
    Published,
    PublishError,
    Transport,
)

T = TypeVar("T")

SLUG_WORDS_CHARS = 80
_H2_END = re.compile(r"</h2\s*>", re.IGNORECASE)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


class WpMedia(BaseModel):
    id: int
    source_url: str


class WpPost(BaseModel):
    id: int
    link: str


class WpUser(BaseModel):
    id: int
    name: str


_POST = TypeAdapter(WpPost)
_USER = TypeAdapter(WpUser)
_POSTS = TypeAdapter(list[WpPost])
_MEDIA = TypeAdapter(WpMedia)


class WordPressPublisher:
    kind = IntegrationKind.WORDPRESS.value

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def publish(self, article: Article, destination: Destination) -> Published:
        site = self._site(destination)
        slug = post_slug(article)
        existing = await self._transport.retrying(lambda: site.find_post(slug))
        if existing is not None:
            return _published(existing)
        uploaded = {
            image.image_id: await site.upload(image, f"{slug}-{image.image_id}")
            for image in article.images
        }
        featured = article.featured
        placed = [(uploaded[i.image_id].source_url, article.title) for i in article.in_article]
        post: dict[str, Any] = {
            "title": article.title,
            "content": with_images(article.html, placed),
            "excerpt": article.meta_description,
            "status": "publish",
            "slug": slug,
        }
        if featured is not None:
            post["featured_media"] = uploaded[featured.image_id].id
        created = await self._transport.retrying(lambda: site.find_or_create_post(slug, post))
        return _published(created)

    def _site(self, destination: Destination) -> _Site:
        if not destination.username or not destination.secret:
            raise PublishError("the WordPress integration has no user name or password")
        auth = (destination.username, destination.secret)
        return _Site(self._transport, destination.endpoint_url, auth)

    async def check(self, destination: Destination) -> str:
        """Sign in (`GET /users/me`): the URL is a WordPress REST API and the password works."""
        site = self._site(destination)
        user = await site.me()
        return f"signed in to WordPress as {user.name}"


class _Site:
    """One WordPress site's REST API, with its credentials."""

    def __init__(self, transport: Transport, root: str, auth: tuple[str, str]) -> None:
        self._transport = transport
        self._api = f"{root.rstrip('/')}/wp-json/wp/v2"
        self._auth = auth

    async def find_post(self, slug: str) -> WpPost | None:
        url = httpx.URL(f"{self._api}/posts", params={"slug": slug, "status": "any"})
        response = await self._transport.once(
            "GET", str(url), what="WordPress (post lookup)", auth=self._auth
        )
        posts = _parse(response, _POSTS, "post lookup")
        return posts[0] if posts else None

    async def find_or_create_post(self, slug: str, post: dict[str, Any]) -> WpPost:
        # A retried create may follow one whose answer was lost after the post was made.
        existing = await self.find_post(slug)
        if existing is not None:
            return existing
        response = await self._transport.once(
            "POST",
            f"{self._api}/posts",
            what="WordPress (create post)",
            headers={"Content-Type": "application/json"},
            content=_json(post),
            auth=self._auth,
        )
        return _parse(response, _POST, "create post")

    async def me(self) -> WpUser:
        response = await self._transport.once(
            "GET", f"{self._api}/users/me", what="WordPress (sign in)", auth=self._auth
        )
        return _parse(response, _USER, "sign in")

    async def upload(self, image: ArticleImage, name: str) -> WpMedia:
        path = image.path
        try:
            if path is None:
                raise FileNotFoundError(image.url)
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise PublishError(f"the file of image {image.image_id} is missing") from None
        extension = path.suffix
        headers = {
            "Content-Type": image.media_type,
            "Content-Disposition": f'attachment; filename="{name}{extension}"',
        }
        response = await self._transport.send(
            "POST",
            f"{self._api}/media",
            what="WordPress (media upload)",
            headers=headers,
            content=data,
            auth=self._auth,
        )
        return _parse(response, _MEDIA, "media upload")


def post_slug(article: Article) -> str:
    """The title's words, ASCII, then a marker that names the content: stable across attempts."""
    ascii_title = (
        unicodedata.normalize("NFKD", article.title).encode("ascii", "ignore").decode().lower()
    )
    words = _NOT_SLUG.sub("-", ascii_title).strip("-")[:SLUG_WORDS_CHARS].rstrip("-")
    marker = f"ca{article.content_id}"
    return f"{words}-{marker}" if words else marker


def with_images(html: str, images: list[tuple[str, str]]) -> str:
    """`html` with image n (a source URL and its alt text) after the n-th `</h2>`; images
    beyond the headings go at the end."""
    ends = [m.end() for m in _H2_END.finditer(html)]
    parts: list[str] = []
    last = 0
    for index, (src, alt) in enumerate(images):
        figure = (
            f'<figure class="wp-block-image"><img src="{escape(src)}" alt="{escape(alt)}"/>'
            "</figure>"
        )
        if index < len(ends):
            parts.append(html[last : ends[index]])
            last = ends[index]
        else:
            parts.append(html[last:])
            last = len(html)
        parts.append(figure)
    parts.append(html[last:])
    return "".join(parts)


def _published(post: WpPost) -> Published:
    return Published(external_id=str(post.id), external_url=post.link)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _parse(response: httpx.Response, adapter: TypeAdapter[T], step: str) -> T:
    try:
        return adapter.validate_json(response.content)
    except ValidationError:
        reason = f"WordPress ({step}) answered something other than its REST API"
        raise PublishError(reason) from None

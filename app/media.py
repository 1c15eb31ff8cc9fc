"""Generated media: where an image's file is stored, the URL it is served at, and the serving
(SPEC §4: stable URLs that cannot be guessed; a guessed path is 404).

An image's file is `{account}/{site}/{content}/{image id}-{url token}.{ext}` under MEDIA_DIR,
served at the same path under MEDIA_URL. The token is 128 random bits drawn when the image row
is created (`Image.url_token`) rather than an HMAC under a server secret, so:

- the ids, which are sequential, are not enough to find a file: a guessed path is 404, exactly
  like a missing one (never 403, which would say that it exists);
- the URL never changes: it depends on no secret to configure, rotate or lose, and every
  attempt at one image writes the same file;
- serving stays a lookup on disk, with no database query per image.

Images whose publication was attempted before the tokens existed kept their old URLs (migration
0005): a webhook's receiver may show readers the URL it was given.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.config import Settings
from app.models.writer import Image

# What is behind a URL never changes (a new image gets a new token), so clients and CDNs keep
# it; nosniff, because the bytes come from an AI provider and must only ever be an image.
SERVED_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


def image_file(image: Image, extension: str) -> PurePosixPath:
    """The image's file, relative to the media folder."""
    return PurePosixPath(
        str(image.account_id),
        str(image.site_id),
        str(image.content_id),
        f"{image.id}-{image.url_token}.{extension}",
    )


def media_url(settings: Settings, relative: PurePosixPath) -> str:
    return f"{settings.media_url.rstrip('/')}/{relative.as_posix()}"


def media_file(settings: Settings, url: str) -> Path | None:
    """The stored file a media URL (`{MEDIA_URL}/a/b.png`) stands for; None for any other URL,
    or one that would leave the media folder."""
    prefix = settings.media_url.rstrip("/") + "/"
    if not url.startswith(prefix):
        return None
    relative = PurePosixPath(url.removeprefix(prefix))
    if relative.is_absolute() or ".." in relative.parts:
        return None
    return settings.media_path.joinpath(*relative.parts)


class MediaFiles(StaticFiles):
    """The media folder over HTTP: files streamed with their type, directories never listed,
    and every path that is not a readable file inside the folder answered 404."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        try:
            return super().lookup_path(path)
        except OSError:
            # Unreadable (Starlette would answer 401) or unnameable: as if it were not there.
            return "", None

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SERVED_HEADERS)
        return response

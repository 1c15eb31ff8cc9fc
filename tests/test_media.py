"""Generated images over HTTP (SPEC §4): each URL carries 128 random bits, a guessed path is 404
like a missing one, directories are never listed, and what is served is cached as immutable."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import PurePosixPath

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.media import image_file, media_url
from app.models.writer import Image, ImageStatus
from tests.builders import create_content, create_image, png_bytes
from tests.engine import configure, feed, load_run, start, work
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]


async def generated_images(
    client: httpx.AsyncClient, session_factory: SessionFactory, settings: Settings, tenant: Tenant
) -> list[Image]:
    """A run of a few keywords up to stage 6: its articles wait in review, unpublished."""
    await feed(client, tenant, 3)
    await configure(client, tenant, stage_4_batch_size=4, stage_7_enabled=False)
    run = await load_run(session_factory, await start(client, tenant))
    await work(settings)
    assert (await load_run(session_factory, run.run_id)).status == "completed"
    async with session_factory() as session:
        images = list(
            await session.scalars(
                select(Image)
                .where(Image.site_id == tenant.site_id, Image.status == ImageStatus.GENERATED)
                .order_by(Image.id)
            )
        )
    assert len(images) >= 3
    return images


async def stored_image(
    session_factory: SessionFactory, settings: Settings, tenant: Tenant
) -> tuple[str, bytes]:
    """A generated image's URL and bytes, stored as stage 6 stores them."""
    content = await create_content(session_factory, tenant)
    image = await create_image(session_factory, tenant, content_id=content.id)
    relative = image_file(image, "png")
    picture = png_bytes(3, 2)
    file = settings.media_path.joinpath(*relative.parts)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(picture)
    return media_url(settings, relative), picture


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "immutable" not in response.headers.get("cache-control", "")


class TestImageUrlsCannotBeGuessed:
    async def test_each_image_url_carries_a_128_bit_token_of_its_own(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(1000))
        images = await generated_images(client, session_factory, settings, tenant)

        for image in images:
            expected = (
                f"/media/{tenant.account_id}/{tenant.site_id}/{image.content_id}/"
                f"{image.id}-{image.url_token}.png"
            )
            assert image.url == expected
            random_bytes = base64.urlsafe_b64decode(image.url_token + "==")
            assert len(random_bytes) * 8 >= 128
        assert len({image.url_token for image in images}) == len(images)

    async def test_another_tenants_guessed_paths_are_404_and_the_real_url_is_the_png(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        owner = await create_tenant(session_factory, credits=Decimal(1000))
        guesser = await create_tenant(session_factory)
        images = await generated_images(client, session_factory, settings, owner)

        for image in images:
            folder = f"/media/{owner.account_id}/{owner.site_id}/{image.content_id}"
            # Sequential ids, the layout of the URLs before tokens, and neighbours' ids.
            for guess in (image.id, image.id - 1, image.id + 1):
                for name in (f"{guess}.png", f"{guess}.jpg", f"{guess}-.png"):
                    response = await client.get(f"{folder}/{name}", headers=guesser.headers)
                    assert_not_found(response)

        assert images[0].url is not None
        served = await client.get(images[0].url, headers=guesser.headers)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/png"
        assert served.content.startswith(b"\x89PNG")
        stored = settings.media_path / images[0].url.removeprefix("/media/")
        assert served.content == stored.read_bytes()


class TestServing:
    async def test_the_file_is_served_with_its_type_and_cached_as_immutable(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        url, picture = await stored_image(
            session_factory, settings, await create_tenant(session_factory)
        )

        response = await client.get(url)

        assert response.status_code == 200
        assert response.content == picture
        assert response.headers["content-type"] == "image/png"
        assert response.headers["content-length"] == str(len(picture))
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        head = await client.head(url)
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(picture))

    async def test_a_revalidation_is_304_and_keeps_the_caching(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        url, _ = await stored_image(session_factory, settings, await create_tenant(session_factory))
        etag = (await client.get(url)).headers["etag"]

        response = await client.get(url, headers={"If-None-Match": etag})

        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"

    async def test_directories_are_never_listed(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        url, _ = await stored_image(session_factory, settings, await create_tenant(session_factory))
        path = PurePosixPath(url)

        for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
            assert_not_found(await client.get(f"{folder}/"))
            assert_not_found(await client.get(str(folder)))
        assert_not_found(await client.get("/media/"))

    @pytest.mark.parametrize(
        "path",
        [
            "/media/%00",
            "/media/1/%00.png",
            "/media/" + "a" * 300 + ".png",
            "/media/..%2F..%2Fetc%2Fpasswd",
            "/media/%2Fetc%2Fpasswd",
        ],
    )
    async def test_a_path_that_names_no_file_of_the_folder_is_404(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        assert_not_found(await client.get(path))

    async def test_a_path_escaping_the_media_folder_is_not_served(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        secret = settings.media_path.parent / "secret.txt"
        secret.write_text("not for the web")
        response = await client.get(f"{settings.media_url}/..%2Fsecret.txt")
        assert_not_found(response)
        assert "not for the web" not in response.text

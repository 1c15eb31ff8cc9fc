"""Stage 6: image prompts → images. Each image is generated, its file stored under the media
folder (at its unguessable path, app/media.py), and the row marked generated with its URL; when a
content has no pending image left it moves to review."""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ai.base import Answer
from app.ai.schemas import ImageOut
from app.media import image_file, media_url
from app.models.billing import Operation
from app.models.writer import Content, Image, ImageStatus, ImageType
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number
from app.stages.base import AIStage, Item
from app.stages.context import StageContext
from app.stages.work import Written, ai_item
from app.writer.states import mark_ready

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}

# Every image runs these: built once (an expression built per call costs more CPU than
# PostgreSQL takes to run it).
_IMAGES = cast(Table, Image.__table__)
_LOCK_CONTENT = (
    select(Content.__table__.c.id)
    .where(Content.__table__.c.id == bindparam("content_id"))
    .with_for_update()
)
_GENERATED = (
    update(_IMAGES)
    .where(_IMAGES.c.id == bindparam("image_id"))
    .values(status=ImageStatus.GENERATED, url=bindparam("url"), error=None)
)
_FAILED = (
    update(_IMAGES)
    .where(_IMAGES.c.id == bindparam("image_id"))
    .values(status=ImageStatus.FAILED, error=bindparam("error"))
)


class ImagesStage(AIStage):
    number = 6
    name = "Image prompts → Images"
    operation = Operation.IMAGE_GENERATION
    batch_size_field = "stage_6_batch_size"
    limit_field = "max_images_per_run"
    taken_counters = ("images_processed",)

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        rows = await session.scalars(
            select(Image)
            .where(Image.site_id == ctx.run.site_id, pending_condition(6), Image.id > after_id)
            .order_by(Image.id)
            .limit(limit)
        )
        return [Item(row.id, row.prompt[:120], row) for row in rows]

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        image: Image = item.data

        async def write(connection: AsyncConnection, answer: Answer[ImageOut]) -> Written:
            relative = await _store(ctx, image, answer.output)
            url = media_url(ctx.deps.settings, relative)
            await _lock_content(connection, image.content_id)
            await connection.execute(_GENERATED, {"image_id": image.id, "url": url})
            await mark_ready(connection, image.content_id)
            return Written(
                units=1,
                deltas={"images_processed": 1, "images_generated": 1},
                message=f"Generated {image.image_type} image {image.id} for content "
                f"{image.content_id}",
                data={"image_id": image.id, "url": url},
            )

        async def failed(connection: AsyncConnection, reason: str) -> dict[str, Number]:
            await _lock_content(connection, image.content_id)
            await connection.execute(_FAILED, {"image_id": image.id, "error": reason[:2000]})
            await mark_ready(connection, image.content_id)
            return {"images_processed": 1, "images_failed": 1, "errors": 1}

        await ai_item(
            ctx,
            item=item,
            item_key=f"image:{image.id}",
            operation=Operation.IMAGE_GENERATION,
            hold=ctx.price(Operation.IMAGE_GENERATION).hold(1),
            call=lambda: ctx.deps.provider.generate_image(
                image.prompt, featured=image.image_type == ImageType.FEATURED
            ),
            write=write,
            failed=failed,
        )


async def _store(ctx: StageContext, image: Image, out: ImageOut) -> PurePosixPath:
    """Write the file (replacing a previous attempt's); returns its path under the media root."""
    relative = image_file(image, EXTENSIONS[out.media_type])
    target = ctx.deps.media_path.joinpath(*relative.parts)

    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(out.data)
        partial.replace(target)

    await asyncio.to_thread(write)
    return relative


async def _lock_content(connection: AsyncConnection, content_id: int) -> None:
    # Two images of one content finishing at once: the second must see the first's commit.
    await connection.execute(_LOCK_CONTENT, {"content_id": content_id})

"""Images get a random URL token, and the files of those not yet given to a publisher move to
names that carry it, so a draft's image is no longer at a guessable path (app/media.py). That
includes a file an attempt wrote at the earlier layout without recording it (a pending image's,
or a `.part`): it moves to the name the image's next attempt will write.

An image whose content's publication was attempted (publishing, published or failed) keeps its
file and URL: a webhook's receiver may show readers the URL it was given. WordPress got a copy
of the file, so nothing of ours is needed there, but a row does not say which publisher it went
through, so these keep theirs too (their article was meant to be public).

The files are moved on the machine that runs the migration, in the media folder of its settings
(MEDIA_DIR, or DATA_DIR/media; `automation migrate` in docker compose has the shared volume).
A move that an interrupted upgrade already made is found again, so running it twice is safe.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:01:00.000000+00:00
"""

import logging
import re
import secrets
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from alembic import context, op

from app.config import Settings, get_settings

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

TOKEN_BYTES = 16
PUBLICATION_TRIED = ("publishing", "published", "failed")
# What the earlier code wrote as `{id}{suffix}` (`.part`: a write that was cut short).
OLD_SUFFIXES = (".png", ".jpg", ".webp", ".part")


def upgrade() -> None:
    op.add_column("images", sa.Column("url_token", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT images.id, images.account_id, images.site_id, images.content_id, images.url, "
            "contents.site_status FROM images "
            "JOIN contents ON contents.id = images.content_id ORDER BY images.id"
        )
    ).all()
    settings: Settings | None = None
    changes = []
    missing = 0
    for image_id, account_id, site_id, content_id, url, site_status in rows:
        token, new_url = secrets.token_urlsafe(TOKEN_BYTES), url
        if site_status not in PUBLICATION_TRIED:
            settings = settings or _settings()
            stored = _stored_file(settings, url) if url else None
            token = _token_in_place(stored, image_id) or token
            # Its file, and what an attempt left at the earlier layout without saying so.
            folder = settings.media_path / str(account_id) / str(site_id) / str(content_id)
            old_files = {folder / f"{image_id}{suffix}" for suffix in OLD_SUFFIXES}
            for old in old_files | ({stored} if stored else set()):
                new = old.with_name(f"{image_id}-{token}{old.suffix}")
                if old != new and old.is_file():
                    old.replace(new)
            if stored is not None:
                new = stored.with_name(f"{image_id}-{token}{stored.suffix}")
                missing += not new.is_file()
                relative = new.relative_to(settings.media_path).as_posix()
                new_url = f"{settings.media_url.rstrip('/')}/{relative}"
        changes.append({"id": image_id, "url": new_url, "token": token})
    if changes:
        bind.execute(
            sa.text("UPDATE images SET url = :url, url_token = :token WHERE id = :id"), changes
        )
    if missing:
        log.warning(
            "%d image files were not found under %s; their rows now name where they belong",
            missing,
            settings.media_path if settings else "",
        )
    op.alter_column("images", "url_token", nullable=False)


def downgrade() -> None:
    # The moved files stay where they are: the earlier code serves any file under the media
    # folder at the URL in its row.
    op.drop_column("images", "url_token")


def _settings() -> Settings:
    """The caller's settings (tests pass theirs), or the environment's (`automation migrate`)."""
    given = context.config.attributes.get("settings")
    settings = given if isinstance(given, Settings) else get_settings()
    if not settings.media_path.is_dir():
        # Moving nothing would leave every draft's image at its guessable path.
        raise RuntimeError(
            f"the media folder {settings.media_path} is not here: run the migration where "
            "MEDIA_DIR (or DATA_DIR) is, with the same settings as the API"
        )
    return settings


def _stored_file(settings: Settings, url: str) -> Path | None:
    prefix = settings.media_url.rstrip("/") + "/"
    if not url.startswith(prefix):
        return None
    relative = PurePosixPath(url.removeprefix(prefix))
    if relative.is_absolute() or ".." in relative.parts:
        return None
    return settings.media_path.joinpath(*relative.parts)


def _token_in_place(stored: Path | None, image_id: int) -> str | None:
    """The token an image's file already carries: upgraded before and downgraded since, or
    moved by an upgrade that was then rolled back."""
    if stored is None:
        return None
    named = re.fullmatch(rf"{image_id}-([A-Za-z0-9_-]{{22,}})", stored.stem)
    if named:
        return named.group(1)
    if not stored.exists():
        moved = sorted(stored.parent.glob(f"{image_id}-*{stored.suffix}"))
        if moved:
            return moved[0].stem.removeprefix(f"{image_id}-")
    return None

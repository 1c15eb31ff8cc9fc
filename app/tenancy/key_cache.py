"""Verified API keys, remembered for a second by the process that verified them.

Every request carries a key; looking it up in PostgreSQL took a round trip and an ORM load on
every status poll. A key found valid is remembered for `VERIFIED_SECONDS`: a revocation, or a
user made inactive, is seen by every process within that time (at once by the process that
revoked it), which SPEC §3's "revocable" allows. Only keys found valid are remembered: an
unknown or revoked key is looked up every time, as before.

The last use of each key is noted in Redis (`app.tenancy.usage`) at most every
`NOTE_USE_EVERY_SECONDS` per process: the column it ends in is updated once a minute anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.tenancy.service import Principal

VERIFIED_SECONDS = 1.0
NOTE_USE_EVERY_SECONDS = 10.0
# Past this many keys the expired ones are dropped, and if none is, all are: a flood of valid
# keys costs a database look-up each, never unbounded memory.
MOST_KEYS = 10_000


@dataclass
class KeyCache:
    verified_seconds: float = VERIFIED_SECONDS
    note_every_seconds: float = NOTE_USE_EVERY_SECONDS
    # SHA-256 of the key (the key itself is not kept) -> (principal, valid until).
    _verified: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    # api key id -> when its use was last noted.
    _noted: dict[int, float] = field(default_factory=dict)

    def get(self, key_hash: str) -> Principal | None:
        found = self._verified.get(key_hash)
        if found is None:
            return None
        principal, until = found
        if time.monotonic() >= until:
            del self._verified[key_hash]
            return None
        return principal

    def put(self, key_hash: str, principal: Principal) -> None:
        now = time.monotonic()
        if len(self._verified) >= MOST_KEYS:
            self._verified = {k: v for k, v in self._verified.items() if v[1] > now}
            if len(self._verified) >= MOST_KEYS:
                self._verified.clear()
        self._verified[key_hash] = (principal, now + self.verified_seconds)

    def forget_key_id(self, api_key_id: int) -> None:
        """A key revoked here: refused by this process from now on."""
        self._verified = {k: v for k, v in self._verified.items() if v[0].api_key_id != api_key_id}

    def use_to_note(self, api_key_id: int) -> bool:
        """Whether this use of the key is to be noted: none was noted in `note_every_seconds`."""
        last = self._noted.get(api_key_id)
        return last is None or time.monotonic() - last >= self.note_every_seconds

    def use_noted(self, api_key_id: int) -> None:
        """The key's use is in Redis now (a note lost to an outage is not: the next use tries)."""
        if len(self._noted) >= MOST_KEYS:
            self._noted.clear()
        self._noted[api_key_id] = time.monotonic()

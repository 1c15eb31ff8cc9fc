"""Password hashing (argon2) and API keys (`ak_<prefix>_<secret>`, stored as a SHA-256 hash)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
KEY_SCHEME = "ak"
_HEX_PREFIX = re.compile("[0-9a-f]{12}")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class NewKey:
    key: str
    prefix: str
    secret_hash: str


def hash_key(key: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is enough (no brute force possible).
    return hashlib.sha256(key.encode()).hexdigest()


def generate_api_key() -> NewKey:
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(6)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, secret_hash=hash_key(key))


def key_prefix(key: str) -> str | None:
    """The visible prefix of a well-formed key, or None (then the key is looked up nowhere: a
    header may carry any byte, and only hex digits go into the query)."""
    scheme, _, rest = key.partition("_")
    prefix_hex, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not _HEX_PREFIX.fullmatch(prefix_hex) or not secret:
        return None
    return f"{scheme}_{prefix_hex}"


def key_matches(key: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), secret_hash)

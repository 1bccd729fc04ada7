"""Password hashing (argon2id), Harbor's password rules, and robot secrets."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "hash_password",
    "verify_password",
    "needs_rehash",
    "unmatchable_hash",
    "password_problem",
    "new_robot_secret",
    "hash_secret",
    "verify_secret",
]

# argon2id at OWASP's recommended minimum (Password Storage Cheat Sheet): 19 MiB, 2 passes,
# 1 lane. Each verification holds `_MEMORY_KIB` while it runs, and logins are verified in
# parallel off the event loop, so a server process needs that much per login it is checking
# at the moment. argon2-cffi's default (RFC 9106's second recommended option: 64 MiB, 3
# passes, 4 lanes) raised every server process's peak memory by 64 MiB at its first login.
# A stored hash names the parameters it was made with and is verified with those: hashes
# made before this change keep working, and are made again with these parameters at the
# user's next successful login (`needs_rehash`).
_TIME_COST = 2
_MEMORY_KIB = 19 * 1024
_PARALLELISM = 1

_hasher = PasswordHasher(time_cost=_TIME_COST, memory_cost=_MEMORY_KIB, parallelism=_PARALLELISM, type=Type.ID)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def unmatchable_hash() -> str:
    """A hash with the current parameters that no password matches (a random one's): what
    a login for an unknown user is checked against, so that it costs what a known user's
    costs. Made once per process, at the first such login."""
    return _hasher.hash(secrets.token_urlsafe(32))


def needs_rehash(password_hash: str) -> bool:
    """Whether `password_hash` was made with other parameters than new hashes get."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return False


def password_problem(password: str) -> str | None:
    """Harbor's rule: 8 to 128 characters with at least one uppercase letter, one lowercase
    letter and one digit. Returns what is wrong, or None."""
    if not 8 <= len(password) <= 128:
        return "the password must be 8 to 128 characters long"
    if not (re.search(r"[A-Z]", password) and re.search(r"[a-z]", password) and re.search(r"[0-9]", password)):
        return "the password needs at least one uppercase letter, one lowercase letter and one digit"
    return None


def new_robot_secret() -> str:
    """A robot's secret: random enough (256 bits) that a fast hash stores it safely."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret_hash: str, secret: str) -> bool:
    return hmac.compare_digest(secret_hash, hash_secret(secret))

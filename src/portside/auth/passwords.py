"""Password hashing (argon2id), Harbor's password rules, and robot secrets."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "verify_password", "password_problem", "new_robot_secret", "hash_secret", "verify_secret"]

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
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

"""Encryption of secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

import base64
import hashlib
import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@cache
def _fernet() -> Fernet:
    key = settings.ACC_SECRETS_KEY
    if not key:
        digest = hashlib.sha256(b"accelerator-secrets:" + settings.SECRET_KEY.encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def encrypt_json(value) -> bytes:
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode())


def decrypt_json(token: bytes | memoryview | None, default=None):
    if not token:
        return default
    try:
        return json.loads(_fernet().decrypt(bytes(token)))
    except InvalidToken:
        raise ValueError("secrets cannot be decrypted: ACC_SECRETS_KEY or SECRET_KEY changed") from None


def hashing_key() -> bytes:
    """Key of the keyed hashes that stand for secret values in cache identities (never the values)."""
    return hashlib.sha256(b"accelerator-cache:" + (settings.ACC_SECRETS_KEY or settings.SECRET_KEY).encode()).digest()

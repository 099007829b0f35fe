"""Channel secrets encrypted at rest with Fernet.

`EncryptedJSONField` holds a dict in Python and a Fernet token (text) in the database. Encryption happens
in `get_prep_value`, which Django calls for `save()`, `bulk_create` and `QuerySet.update(credentials=...)`
alike, so no write path stores plaintext; `from_db_value` decrypts for instances, `values()` and
`values_list()`.

Keys come from settings.STOCKLINE_SECRET_KEYS (the environment variable of the same name): a list of
Fernet keys, the first encrypts, every one decrypts, so a new key can be put first and the old one kept
until `rotate_secrets` has re-encrypted every row.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SecretKeyError(ImproperlyConfigured):
    """STOCKLINE_SECRET_KEYS holds a malformed key, or none of its keys opens a stored secret."""


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise SecretKeyError("STOCKLINE_SECRET_KEYS is empty: set at least one Fernet key.")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except (ValueError, TypeError):
            # The key itself is never repeated in the message.
            raise SecretKeyError(
                f"STOCKLINE_SECRET_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes)."
            ) from None
    return MultiFernet(fernets)


def secrets_cipher() -> MultiFernet:
    """The configured rotation list; raises SecretKeyError with a one-line reason when a key is malformed."""
    return _multi_fernet(tuple(settings.STOCKLINE_SECRET_KEYS))


def secret_encrypt(value: dict) -> str:
    return secrets_cipher().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def secret_decrypt(token: str) -> dict:
    try:
        return json.loads(secrets_cipher().decrypt(token.encode()))
    except InvalidToken:
        raise SecretKeyError(
            "Stored channel credentials cannot be decrypted with any key in STOCKLINE_SECRET_KEYS "
            "(was the key that encrypted them removed from the list?)."
        ) from None


def secret_rotate(token: str) -> str:
    """The same secret encrypted with the first key."""
    try:
        return secrets_cipher().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretKeyError(
            "Stored channel credentials cannot be decrypted with any key in STOCKLINE_SECRET_KEYS."
        ) from None


class EncryptedJSONField(models.TextField):
    """A dict of secrets, stored as one Fernet token. Not searchable or filterable by content, on purpose."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return secret_decrypt(value)

    def to_python(self, value):
        if value is None or isinstance(value, dict):
            return value
        return secret_decrypt(value)

    def get_prep_value(self, value):
        if value is None or hasattr(value, "resolve_expression"):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"{self.name} holds a dict of secrets, not {type(value).__name__}.")
        return secret_encrypt(value)

    def value_to_string(self, obj):
        # dumpdata and serialisers get the token, never the plaintext.
        return self.get_prep_value(self.value_from_object(obj))

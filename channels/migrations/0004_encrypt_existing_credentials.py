"""Encrypt the credentials stored in plain JSON before the column became an EncryptedJSONField.

Raw SQL on purpose: the field now decrypts on read, so the ORM cannot read the plaintext rows.
A row that is not JSON is already a Fernet token and is left as it is, so the migration can run twice.
"""

import json

from django.db import migrations

from channels.fields import secret_decrypt, secret_encrypt


def _rows(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, credentials FROM channels_channel")
        return cursor.fetchall()


def _write(schema_editor, pk, value):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("UPDATE channels_channel SET credentials = %s WHERE id = %s", [value, pk])


def _plaintext(value):
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def encrypt_plaintext(apps, schema_editor):
    for pk, value in _rows(schema_editor):
        plain = _plaintext(value)
        if plain is not None:
            _write(schema_editor, pk, secret_encrypt(plain))


def decrypt_to_plaintext(apps, schema_editor):
    for pk, value in _rows(schema_editor):
        if value and _plaintext(value) is None:
            _write(schema_editor, pk, json.dumps(secret_decrypt(value)))


class Migration(migrations.Migration):
    dependencies = [("channels", "0003_encrypted_credentials_and_history")]

    operations = [migrations.RunPython(encrypt_plaintext, decrypt_to_plaintext)]

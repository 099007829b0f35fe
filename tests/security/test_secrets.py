"""Channel credentials at rest: encrypted in the database and its dumps, rotatable, never shown or logged."""

import io
import json
import logging

import pytest
import responses
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from channels.models import Channel, SyncRun
from channels.sync.connections import ChannelCredentialStore
from channels.sync.listings_download import listings_download
from tests.channels.factories import ChannelFactory
from tests.security.conftest import change_form_data

pytestmark = pytest.mark.django_db

EKM = "http://127.0.0.1:8100/ekm/demo"
SECRET = "sk-live-5f2b9c1e77aa40d1"
REFRESH = "rt-live-0c8d2e4b91f3"


def stored_column() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM channels_channel")
        return [row[0] for row in cursor.fetchall()]


def secret_channel(**kwargs) -> Channel:
    return ChannelFactory(credentials={"client_id": "cid", "client_secret": SECRET, "refresh_token": REFRESH}, **kwargs)


def test_the_database_and_its_dump_hold_no_plaintext_secret():
    channel = secret_channel(name="Teapots")

    raw = stored_column()
    dump = io.StringIO()
    call_command("dumpdata", "channels", stdout=dump)

    assert raw and all(value.startswith("gAAAAA") for value in raw)
    assert not any(SECRET in value or REFRESH in value for value in raw)
    assert SECRET not in dump.getvalue() and REFRESH not in dump.getvalue()
    # The application still reads them.
    assert Channel.objects.get(pk=channel.pk).credentials["client_secret"] == SECRET


def test_a_dump_loads_back_into_working_credentials(tmp_path):
    channel = secret_channel(name="Teapots")
    fixture = tmp_path / "channels.json"
    call_command("dumpdata", "channels.channel", output=str(fixture))
    Channel.objects.all().delete()

    call_command("loaddata", str(fixture), verbosity=0)

    assert Channel.objects.get(pk=channel.pk).credentials["refresh_token"] == REFRESH


def test_tokens_a_connector_saves_are_encrypted_too():
    channel = secret_channel()
    store = ChannelCredentialStore(channel.pk)

    store.save({"refresh_token": "rt-rotated-9d1f0a"})

    assert all("rt-rotated-9d1f0a" not in value for value in stored_column())
    assert store.load() == {"client_id": "cid", "client_secret": SECRET, "refresh_token": "rt-rotated-9d1f0a"}


def test_rotation_moves_every_row_to_the_new_key_so_the_old_one_can_be_dropped():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(STOCKLINE_SECRET_KEYS=[old]):
        channel = secret_channel()
    out = io.StringIO()

    with override_settings(STOCKLINE_SECRET_KEYS=[new, old]):
        call_command("rotate_secrets", stdout=out)

    assert "1 channel(s)" in out.getvalue()
    with override_settings(STOCKLINE_SECRET_KEYS=[new]):
        assert Channel.objects.get(pk=channel.pk).credentials["client_secret"] == SECRET
    assert json.loads(Fernet(new.encode()).decrypt(stored_column()[0].encode()))["client_secret"] == SECRET


def test_rotation_with_a_malformed_key_stops_with_one_line_and_changes_nothing():
    secret_channel()
    before = stored_column()

    keys = ["not-a-key", Fernet.generate_key().decode()]
    with override_settings(STOCKLINE_SECRET_KEYS=keys), pytest.raises(CommandError) as raised:
        call_command("rotate_secrets")

    message = str(raised.value)
    assert "\n" not in message and "key 1 is not a Fernet key" in message and "not-a-key" not in message
    assert stored_column() == before


def test_rotation_without_the_key_that_encrypted_a_row_names_the_channel_and_changes_nothing():
    secret_channel(name="Teapots")
    before = stored_column()

    unrelated = [Fernet.generate_key().decode()]
    with override_settings(STOCKLINE_SECRET_KEYS=unrelated), pytest.raises(CommandError, match="Channel 'Teapots'"):
        call_command("rotate_secrets")

    assert stored_column() == before


def test_the_admin_never_shows_a_stored_secret(admin_client):
    channel = secret_channel()

    page = admin_client.get(reverse("admin:channels_channel_change", args=(channel.pk,))).content.decode()
    history = admin_client.get(reverse("admin:channels_channel_history", args=(channel.pk,))).content.decode()
    listing = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()

    assert 'name="credential_client_secret"' in page  # the replace-only input is there, empty
    for html in (page, history, listing):
        assert SECRET not in html and REFRESH not in html


def test_replacing_a_secret_in_the_admin_keeps_the_others_and_records_no_secret_in_history(admin_client):
    channel = secret_channel()
    url = reverse("admin:channels_channel_change", args=(channel.pk,))
    data = change_form_data(admin_client, url, credential_client_secret="sk-live-replaced-77")

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Channel.objects.get(pk=channel.pk).credentials == {
        "client_id": "cid", "client_secret": "sk-live-replaced-77", "refresh_token": REFRESH,
    }
    record = channel.history.latest()
    assert record.history_change_reason == "Credentials replaced: Client secret"
    assert not hasattr(record, "credentials")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM channels_historicalchannel")
        assert "sk-live-replaced-77" not in repr(cursor.fetchall())


@responses.activate
def test_a_secret_the_channel_echoes_back_reaches_no_sync_run_exception_or_log(caplog):
    channel = secret_channel()
    responses.add(
        responses.POST, f"{EKM}/connect/token", status=400,
        json={"error": "invalid_client", "error_description": f"client_secret {SECRET} refresh_token={REFRESH}"},
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(Exception) as raised:
        listings_download(channel_id=channel.pk)

    run = SyncRun.objects.get(channel=channel)
    channel.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and "invalid_client" in run.error
    for text in (run.error, str(raised.value), channel.reauthorisation_reason, caplog.text):
        assert SECRET not in text and REFRESH not in text


def test_credentials_permission_exists_for_the_groups():
    assert Permission.objects.filter(codename="change_channel_credentials", content_type__app_label="channels").exists()

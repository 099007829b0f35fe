"""Reauthorise with new credentials, against the sandbox: only credentials the channel accepts replace the
stored ones, and a refusal of the new ones neither flags the channel nor stops it working."""

import pytest

from channels.models import Channel
from channels.sync.connections import channel_reauthorise, channel_test
from tests.faults.conftest import account, connect

pytestmark = pytest.mark.django_db


def test_a_mistyped_rakuten_token_is_refused_and_the_channel_goes_on_with_its_stored_one(sandbox):
    channel = connect(sandbox, "rakuten")
    stored = dict(channel.credentials)

    result = channel_reauthorise(channel_id=channel.pk, authorization_code=stored["token"] + "x")

    assert not result.ok
    assert result.message.startswith("Authorisation failed") and "stored credentials are unchanged" in result.message
    channel.refresh_from_db()
    assert not channel.needs_reauthorisation and channel.reauthorisation_reason == ""
    assert channel.credentials == stored
    assert channel_test(channel_id=channel.pk).ok


def test_a_rakuten_token_that_works_replaces_the_stored_one_and_clears_the_flag(sandbox):
    channel = connect(sandbox, "rakuten")
    Channel.objects.filter(pk=channel.pk).update(needs_reauthorisation=True, reauthorisation_reason="HTTP 401")
    # The seller generated a new token in Rakuten's back office: the old one stops working.
    sandbox.account("rakuten", account("rakuten"), credentials={"login": channel.seller_id, "token": "renewed"})

    assert channel_reauthorise(channel_id=channel.pk, authorization_code=" renewed ").ok

    channel.refresh_from_db()
    assert channel.credentials["token"] == "renewed" and not channel.needs_reauthorisation
    assert channel_test(channel_id=channel.pk).ok


def test_an_ekm_code_pasted_twice_is_refused_and_keeps_the_refresh_token_the_first_one_gave(sandbox):
    channel = connect(sandbox, "ekm")
    assert channel_reauthorise(channel_id=channel.pk, authorization_code="consent-1").ok
    channel.refresh_from_db()
    granted = channel.credentials["refresh_token"]

    result = channel_reauthorise(channel_id=channel.pk, authorization_code="consent-1")

    assert not result.ok and result.message.startswith("Authorisation failed")
    channel.refresh_from_db()
    assert channel.credentials["refresh_token"] == granted and not channel.needs_reauthorisation
    assert channel_test(channel_id=channel.pk).ok

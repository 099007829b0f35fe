"""eBay's marketplace account deletion notifications at the hub's endpoint: the challenge eBay checks it with,
and signed notices that erase the buyer's personal data from the channel's orders."""

import hashlib
import json

import pytest
from django.test import override_settings

from channels.sync.account_deletion import account_deletion_url
from channels.sync.order_download import orders_download
from channels.sync.order_hints import channel_webhook_token
from orders.models import Order
from tests.channels.test_ebay_e2e import connect_ebay
from tests.channels.test_sync_e2e import connect as connect_other

pytestmark = pytest.mark.django_db
PUBLIC_URL = "https://hub.example.com"
VERIFICATION_TOKEN = "stockline_deletion_token_0123456789abcdef"


@pytest.fixture
def channel(sandbox):
    channel = connect_ebay(sandbox)
    channel.credentials = {**channel.credentials, "deletion_verification_token": VERIFICATION_TOKEN}
    channel.save()
    sandbox.orders("ebay", "ebay-shop", [
        {"items": [{"sku": "MUG", "quantity": 1}], "address": {"first_name": "Jo", "last_name": "Bloggs"},
         "buyer_email": "jo@example.com"},
        {"items": [{"sku": "MUG", "quantity": 1}], "address": {"first_name": "Sam", "last_name": "Smith"}},
    ])
    orders_download(channel_id=channel.pk)
    return channel


def path_of(channel):
    return f"/webhooks/{channel.pk}/{channel_webhook_token(channel_id=channel.pk)}/account-deletion/"


@override_settings(STOCKLINE_PUBLIC_URL=PUBLIC_URL)
def test_the_challenge_is_answered_with_the_hash_ebay_expects(client, channel):
    response = client.get(path_of(channel), {"challenge_code": "a8628072-3d33-45ee-9004-bee86830a22d"})

    endpoint = account_deletion_url(channel_id=channel.pk)
    assert endpoint == PUBLIC_URL + path_of(channel) and "ebay" not in endpoint
    expected = hashlib.sha256(("a8628072-3d33-45ee-9004-bee86830a22d" + VERIFICATION_TOKEN + endpoint).encode())
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {"challengeResponse": expected.hexdigest()}


def test_no_verification_token_no_answer(client, sandbox):
    channel = connect_ebay(sandbox)

    response = client.get(path_of(channel), {"challenge_code": "abc"})

    assert response.status_code == 400 and "verification token" in response.content.decode()


def test_a_signed_notice_erases_the_buyers_personal_data_only(client, sandbox, channel):
    notice = sandbox.account_deletion_notice("ebay-shop", "jo_buyer")

    response = client.post(path_of(channel), notice["body"], content_type="application/json",
                           HTTP_X_EBAY_SIGNATURE=notice["headers"]["X-EBAY-SIGNATURE"])

    assert response.status_code == 204
    jo, sam = Order.objects.order_by("buyer_name")
    assert (jo.buyer_name, jo.buyer_email, jo.ship_name, jo.ship_line1, jo.ship_postcode) == ("", "", "", "", "")
    assert jo.items.count() == 1 and jo.total > 0
    assert sam.buyer_name == "sam_buyer" and sam.ship_name == "Sam Smith"


def test_a_notice_whose_body_was_changed_is_refused_and_erases_nothing(client, sandbox, channel):
    notice = sandbox.account_deletion_notice("ebay-shop", "jo_buyer")
    forged = json.loads(notice["body"])
    forged["notification"]["data"]["username"] = "sam_buyer"

    response = client.post(path_of(channel), json.dumps(forged), content_type="application/json",
                           HTTP_X_EBAY_SIGNATURE=notice["headers"]["X-EBAY-SIGNATURE"])

    assert response.status_code == 412 and "signature does not match" in response.content.decode()
    assert sorted(Order.objects.values_list("buyer_name", flat=True)) == ["jo_buyer", "sam_buyer"]


def test_an_unsigned_notice_is_refused(client, sandbox, channel):
    notice = sandbox.account_deletion_notice("ebay-shop", "jo_buyer")

    response = client.post(path_of(channel), notice["body"], content_type="application/json")

    assert response.status_code == 412 and "X-EBAY-SIGNATURE" in response.content.decode()
    assert Order.objects.filter(buyer_name="jo_buyer").exists()


def test_a_wrong_path_token_is_not_found(client, channel):
    response = client.get(f"/webhooks/{channel.pk}/not-the-token/account-deletion/", {"challenge_code": "abc"})

    assert response.status_code == 404


def test_other_kinds_have_no_account_deletion_endpoint(client, sandbox):
    ekm = connect_other(sandbox, "ekm")

    response = client.get(path_of(ekm), {"challenge_code": "abc"})

    assert response.status_code == 400 and "no account deletion notices" in response.content.decode()

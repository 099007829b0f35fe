from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from channels.models import NEVER_SYNCED, Channel, ChannelListing
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, ChannelListingFactory

pytestmark = pytest.mark.django_db


def _messages(exc: ValidationError, field: str) -> list[str]:
    return exc.value.message_dict[field]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_listed_percentage", 101, "A percentage cannot be above 100."),
        ("latency_days", 31, "Amazon accepts a latency of 1 to 30 days (0 means it is not sent)."),
        ("utc_offset_hours", Decimal("14.5"), "The UTC offset must be between -12 and +14 hours."),
        ("utc_offset_hours", Decimal("-13"), "The UTC offset must be between -12 and +14 hours."),
        ("currency", "XYZ", "XYZ is not an ISO 4217 currency code (for example GBP, EUR, USD)."),
    ],
)
def test_channel_validation_explains_the_bad_setting(field, value, message):
    channel = AmazonChannelFactory.build(**{field: value})

    with pytest.raises(ValidationError) as exc:
        channel.full_clean()

    assert message in _messages(exc, field)


def test_fba_is_refused_for_a_non_amazon_channel():
    channel = ChannelFactory.build(kind=Channel.Kind.EKM, fba_enabled=True)

    with pytest.raises(ValidationError) as exc:
        channel.full_clean()

    assert _messages(exc, "fba_enabled") == ["EKM channels have no fulfilment network of their own."]


def test_database_refuses_a_percentage_above_100_even_without_form_validation():
    channel = ChannelFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Channel.objects.filter(pk=channel.pk).update(max_listed_percentage=150)


def test_amazon_defaults_follow_the_seed():
    defaults = Channel.defaults_for(Channel.Kind.AMAZON)

    assert defaults["mark_as_despatched"] is True
    assert defaults["update_inventory"] is True
    assert defaults["last_order_sync"] == NEVER_SYNCED
    assert defaults["utc_offset_hours"] == Decimal("1")
    assert defaults["last_inventory_sync"].time().isoformat() == "00:00:00"


def test_a_channel_sku_is_listed_once_per_channel():
    listing = ChannelListingFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        ChannelListing.objects.create(channel=listing.channel, channel_sku=listing.channel_sku)


def test_listing_override_percentage_is_validated():
    listing = ChannelListingFactory.build(channel=ChannelFactory(), stock_item=None, max_listed_percentage=120)

    with pytest.raises(ValidationError) as exc:
        listing.full_clean()

    assert _messages(exc, "max_listed_percentage") == ["A percentage cannot be above 100."]

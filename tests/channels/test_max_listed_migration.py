"""channels 0015 on a database that has a Max Listed Quantity of 0 (which ended every listing it capped): the
zeros become empty, "no maximum" (a listing's then falls back to its channel's default), the other values stay."""

import pytest

from tests.migrations import at_migrations, migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("channels", "0014_order_download_at_channel_quota")]
AFTER = [("channels", "0015_max_listed_not_zero")]


@pytest.fixture
def at_0014():
    with at_migrations(BEFORE) as apps:
        yield apps


def test_zeros_become_empty_and_other_maximums_stay(at_0014):
    channel_model = at_0014.get_model("channels", "Channel")
    listing_model = at_0014.get_model("channels", "ChannelListing")
    zero = channel_model.objects.create(name="Zero", kind="ekm", max_listed_quantity=0)
    ten = channel_model.objects.create(name="Ten", kind="ekm", max_listed_quantity=10)
    listings = [listing_model.objects.create(channel=ten, channel_sku=sku, max_listed_quantity=value)
                for sku, value in (("ENDED", 0), ("FIVE", 5), ("DEFAULT", None))]

    # Read through the models as 0015 leaves them: a later migration's columns are not there yet.
    after = migrate(AFTER)
    channels, channel_listings = after.get_model("channels", "Channel"), after.get_model("channels", "ChannelListing")

    assert channels.objects.get(pk=zero.pk).max_listed_quantity is None
    assert channels.objects.get(pk=ten.pk).max_listed_quantity == 10
    by_sku = dict(channel_listings.objects.filter(pk__in=[row.pk for row in listings])
                  .values_list("channel_sku", "max_listed_quantity"))
    assert by_sku == {"ENDED": None, "FIVE": 5, "DEFAULT": None}

"""Push state rows take their listing's channel when the column arrives, on a database that has pushed before."""

import pytest

from tests.migrations import at_migrations, migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("channels", "0021_channel_location_number")]
AFTER = [("channels", "0022_listing_push_state_channel")]


def test_every_push_state_takes_its_listings_channel():
    with at_migrations(BEFORE) as apps:
        channel = apps.get_model("channels", "Channel")
        listing = apps.get_model("channels", "ChannelListing")
        state = apps.get_model("channels", "ListingPushState")
        amazon = channel.objects.create(name="Amazon", kind="amazon")
        ekm = channel.objects.create(name="EKM", kind="ekm")
        pushed = {}
        for number, shop in enumerate((amazon, ekm, ekm)):
            row = listing.objects.create(channel=shop, channel_sku=f"SKU-{number}")
            state.objects.create(listing=row, last_pushed_quantity=5)
            pushed[row.pk] = shop.pk

        apps = migrate(AFTER)

        rows = apps.get_model("channels", "ListingPushState").objects.values_list("listing_id", "channel_id")
        assert dict(rows) == pushed

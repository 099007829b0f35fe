"""The inventory push: what is sent, in what batches, and what is recorded as pushed."""

from decimal import Decimal

import pytest

from channels.connectors.base import ChannelTransientError, PushResult
from channels.models import ChannelListing, SyncRun
from channels.services import listings_stock_changed
from channels.sync.inventory_push import inventory_push
from inventory.models import StockLevel
from tests.channels.factories import ChannelFactory, ChannelListingFactory, SyncRunFactory, waiting_for_push
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


class RecordingConnector:
    """Answers like a channel would; the real connectors are exercised against the sandbox."""

    max_batch_size = 2

    def __init__(self, reject=(), fail_on_batch=None):
        self.batches, self.reject, self.fail_on_batch = [], set(reject), fail_on_batch
        # What happens while the push waits for its turn under the quota, and how many turns it took.
        self.while_waiting, self.turns = None, 0

    def push_turn_take(self):
        self.turns += 1
        if self.while_waiting is not None:
            self.while_waiting()

    def push_listings(self, updates):
        if len(self.batches) == self.fail_on_batch:
            raise ChannelTransientError("HTTP 503 from the channel")
        self.batches.append(list(updates))
        return [
            PushResult(u.channel_sku, u.channel_sku not in self.reject,
                       "Quantity rejected: listing is suppressed" if u.channel_sku in self.reject else "")
            for u in updates
        ]


@pytest.fixture
def shop():
    warehouse = LocationFactory(name="Main warehouse", is_default=True)
    channel = ChannelFactory(name="EKM shop", latency_days=2)
    listings = []
    for n, quantity in enumerate([5, 0, 12]):
        item = StockItemFactory(sku=f"SKU-{n}", retail_price=Decimal("9.50"))
        StockLevelFactory(stock_item=item, location=warehouse, quantity=quantity)
        listings.append(ChannelListingFactory(channel=channel, stock_item=item, push_pending=True))
    return channel, listings


@pytest.fixture
def connector(monkeypatch):
    def install(**kwargs):
        fake = RecordingConnector(**kwargs)
        monkeypatch.setattr("channels.sync.inventory_push.channel_connector", lambda channel: fake)
        return fake
    return install


def sent(fake):
    return {u.channel_sku: (u.quantity, u.latency_days) for batch in fake.batches for u in batch}


def test_every_changed_listing_is_sent_in_batches_and_recorded(shop, connector):
    channel, listings = shop
    fake = connector()

    run = inventory_push(channel_id=channel.pk)

    assert [len(batch) for batch in fake.batches] == [2, 1]
    assert sent(fake) == {"SKU-0": (5, 2), "SKU-1": (0, 2), "SKU-2": (12, 2)}
    assert (run.status, run.processed, run.failed) == (SyncRun.Status.SUCCESS, 3, 0)
    pushed = {li.channel_sku: li for li in ChannelListing.objects.select_related("push_state")}
    assert pushed["SKU-2"].last_push.last_pushed_quantity == 12 and pushed["SKU-2"].last_push.last_pushed_at
    assert pushed["SKU-1"].last_push.is_ended
    assert not any(waiting_for_push(li) for li in pushed.values())
    channel.refresh_from_db()
    assert channel.last_inventory_sync is not None


def test_nothing_is_sent_when_nothing_changed(shop, connector):
    channel, _ = shop
    connector()
    inventory_push(channel_id=channel.pk)
    again = connector()

    inventory_push(channel_id=channel.pk)

    assert again.batches == []


def test_a_listing_the_channel_rejects_stays_pending_with_its_message(shop, connector):
    channel, _ = shop
    connector(reject={"SKU-2"})

    run = inventory_push(channel_id=channel.pk)

    rejected = ChannelListing.objects.get(channel_sku="SKU-2")
    assert waiting_for_push(rejected) and rejected.last_push.last_pushed_quantity is None
    assert "suppressed" in rejected.last_push.push_error
    assert run.status == SyncRun.Status.PARTIAL and run.errors[0]["record_id"] == "SKU-2"
    retry = connector()
    inventory_push(channel_id=channel.pk)
    assert sent(retry) == {"SKU-2": (12, 2)}


def test_a_failed_batch_keeps_what_was_accepted_and_the_retry_sends_only_the_rest(shop, connector):
    channel, _ = shop
    connector(fail_on_batch=1)

    with pytest.raises(ChannelTransientError):
        inventory_push(channel_id=channel.pk)

    assert SyncRun.objects.get().status == SyncRun.Status.PARTIAL
    retry = connector()
    inventory_push(channel_id=channel.pk)
    assert sent(retry) == {"SKU-2": (12, 2)}


@pytest.mark.parametrize("switch", ["enabled", "inventory_sync", "update_inventory"])
def test_no_push_unless_enabled_inventory_sync_and_update_inventory_are_all_on(shop, connector, switch):
    channel, _ = shop
    setattr(channel, switch, False)
    channel.save()
    fake = connector()

    assert inventory_push(channel_id=channel.pk) is None
    assert fake.batches == []


def test_full_resends_every_listing_even_unchanged(shop, connector):
    channel, _ = shop
    connector()
    inventory_push(channel_id=channel.pk)
    full = connector()

    inventory_push(channel_id=channel.pk, full=True)

    assert set(sent(full)) == {"SKU-0", "SKU-1", "SKU-2"}


def test_a_run_left_running_by_a_killed_worker_is_closed_by_the_next_push(shop, connector):
    channel, _ = shop
    killed = SyncRunFactory(channel=channel, kind=SyncRun.Kind.INVENTORY, status=SyncRun.Status.RUNNING)
    downloading = SyncRunFactory(channel=channel, kind=SyncRun.Kind.ORDERS, status=SyncRun.Status.RUNNING)
    elsewhere = SyncRunFactory(kind=SyncRun.Kind.INVENTORY, status=SyncRun.Status.RUNNING)
    connector()

    run = inventory_push(channel_id=channel.pk)

    killed.refresh_from_db()
    assert killed.status == SyncRun.Status.FAILED and killed.finished_at is not None
    assert killed.error.startswith("Interrupted: the worker running it stopped")
    assert run.status == SyncRun.Status.SUCCESS
    # Another kind of run on this channel, or a push on another channel, may really be going on.
    for other in (downloading, elsewhere):
        other.refresh_from_db()
        assert other.status == SyncRun.Status.RUNNING


def test_a_running_push_shows_how_many_listings_it_has_sent_so_far(shop, connector):
    channel, _ = shop
    fake = connector()
    seen = []
    answer = fake.push_listings

    def push_listings(updates):
        seen.append(SyncRun.objects.get(channel=channel, kind=SyncRun.Kind.INVENTORY).processed)
        return answer(updates)

    fake.push_listings = push_listings

    inventory_push(channel_id=channel.pk)

    assert seen == [0, 2], "the second batch goes out with the first one's two listings counted"


def test_a_sale_made_while_the_push_waits_for_its_quota_goes_out_in_that_push(shop, connector):
    channel, listings = shop
    fake = connector()
    item = listings[2].stock_item

    def sale_meanwhile():
        StockLevel.objects.filter(stock_item=item).update(quantity=7)
        listings_stock_changed(stock_item_ids=[item.pk])

    fake.while_waiting = sale_meanwhile

    inventory_push(channel_id=channel.pk)

    assert sent(fake)["SKU-2"] == (7, 2)
    assert not waiting_for_push(ChannelListing.objects.get(channel_sku="SKU-2"))


def test_a_push_with_nothing_waiting_leaves_the_quota_to_the_next_change(shop, connector):
    channel, _ = shop
    first = connector()
    inventory_push(channel_id=channel.pk)
    idle = connector()

    inventory_push(channel_id=channel.pk)

    assert (first.turns, idle.turns, idle.batches) == (1, 0, [])

"""The marketplaces misbehave mid-sync (the sandbox's fault injection); the hub loses nothing, duplicates
nothing and converges. Tasks run inline (tests/conftest.py), so a task's retries run at once."""

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from channels.models import SyncRun
from channels.tasks import despatch_confirm_task, inventory_push_task, orders_download_task
from inventory.models import StockLevel, StockMovement
from inventory.services import stock_levels_set_bulk
from orders.models import Order, PostalService
from orders.services import order_process
from tests.faults.conftest import (
    KINDS,
    SKUS,
    account,
    assert_converged,
    generate_orders,
    push_everywhere,
    run_like_a_worker,
)

pytestmark = pytest.mark.django_db(transaction=True)

# How each channel names its second page of orders, and its stock update call (sandbox/README.md).
SECOND_ORDER_PAGE = {"amazon": "paginationToken=", "ekm": r"orders/search.*page=2", "rakuten": "nexttoken="}
PUSH_CALL = {"amazon": "listings/2021-08-01/items", "ekm": "/stock", "rakuten": "action=import"}
# Two pages of orders on each channel (Amazon and Rakuten pages hold 100, EKM's 20).
ORDERS_PER_CHANNEL = {"amazon": 130, "ekm": 30, "rakuten": 120}


def orders_on_every_channel(sandbox) -> None:
    for kind in KINDS:
        generate_orders(sandbox, kind, ORDERS_PER_CHANNEL[kind])


def download_everywhere(channels) -> None:
    for channel in channels.values():
        run_like_a_worker(orders_download_task, channel.pk)


def runs(channel, kind=SyncRun.Kind.ORDERS):
    return list(SyncRun.objects.filter(channel=channel, kind=kind).order_by("pk").values_list("status", "error"))


@pytest.mark.parametrize("retry_after", [1, 30], ids=["waited-in-place", "task-retried"])
def test_throttled_mid_download_every_order_arrives_once(sandbox, shop, retry_after):
    orders_on_every_channel(sandbox)
    for kind in KINDS:
        sandbox.faults(kind, account(kind), [{"path": SECOND_ORDER_PAGE[kind], "type": "429",
                                              "retry_after": retry_after}])

    download_everywhere(shop)
    push_everywhere(shop)

    assert_converged(sandbox, shop)
    for channel in shop.values():
        # Retry-After within the client's patience is waited out; longer, the run stops with page one
        # stored (partial) and the task retries after it.
        assert [status for status, _ in runs(channel)] == (["success"] if retry_after == 1 else ["partial", "success"])


@pytest.mark.parametrize("fault", [{"type": "500", "times": 2}, {"type": "503", "times": 1, "retry_after": 1},
                                   {"type": "timeout", "times": 2, "delay": 0.5}])
def test_server_errors_and_timeouts_mid_download_are_retried_to_completion(sandbox, shop, fault):
    orders_on_every_channel(sandbox)
    for kind in KINDS:
        sandbox.faults(kind, account(kind), [{"path": SECOND_ORDER_PAGE[kind], **fault}])

    download_everywhere(shop)
    push_everywhere(shop)

    assert_converged(sandbox, shop)
    for channel in shop.values():
        # Page one was stored before the failure; the retry found it again and left it as it was.
        assert runs(channel)[-1][0] == "success"


@pytest.mark.parametrize("fault", [{"type": "429", "retry_after": 1}, {"type": "429", "retry_after": 30},
                                   {"type": "500", "times": 2}, {"type": "timeout", "delay": 0.5}])
def test_faults_mid_push_still_leave_every_channel_showing_the_hubs_quantity(sandbox, shop, fault):
    for kind in KINDS:
        generate_orders(sandbox, kind, 10)
        run_like_a_worker(orders_download_task, shop[kind].pk)
    for kind in KINDS:
        # After a few calls, so the push fails part-way (Amazon and EKM send one call per SKU).
        sandbox.faults(kind, account(kind), [{"path": PUSH_CALL[kind], "after": 3 if kind != "rakuten" else 0,
                                              **fault}])

    for channel in shop.values():
        run_like_a_worker(inventory_push_task, channel.pk)

    assert_converged(sandbox, shop)


def orders_over_the_last_hours(sandbox, kind: str, count: int) -> list[str]:
    """`count` orders five minutes apart, the newest a minute ago: further apart than the download's overlap."""
    now = timezone.now().replace(microsecond=0)
    orders = [{"items": [{"sku": SKUS[n % len(SKUS)], "quantity": 1, "price": "9.99"}], "paid": True,
               "created_at": (now - timedelta(minutes=1 + 5 * (count - n))).isoformat().replace("+00:00", "Z")}
              for n in range(count)]
    return [str(order_id) for order_id in sandbox.orders(kind, account(kind), orders)]


def test_a_malformed_order_is_recorded_by_id_the_rest_imported_and_it_arrives_at_the_next_download(sandbox, shop):
    spoilt = {}
    for kind in KINDS:
        # The 6th order of the first page loses its quantity (EKM orders have none: their total), two hours
        # before the newest: the next download's five-minute overlap alone would not find it again.
        spoilt[kind] = orders_over_the_last_hours(sandbox, kind, 30)[5]
        sandbox.faults(kind, account(kind), [{"path": "orders/search|orders/2026|getcurrentsales", "type": "malformed",
                                              "index": 5, "corrupt": "quantity"}])

    download_everywhere(shop)

    for kind, channel in shop.items():
        run = SyncRun.objects.filter(channel=channel, kind=SyncRun.Kind.ORDERS).latest("pk")
        assert run.status == SyncRun.Status.PARTIAL
        assert [error["record_id"] for error in run.errors] == [spoilt[kind]]
        imported = set(Order.objects.filter(channel=channel).values_list("channel_order_id", flat=True))
        assert len(imported) == 29 and spoilt[kind] not in imported

    download_everywhere(shop)
    push_everywhere(shop)
    assert_converged(sandbox, shop)


@pytest.mark.parametrize("kind", ["amazon", "ekm"])
def test_an_access_token_expiring_mid_download_and_mid_push_is_renewed_without_a_gap(sandbox, shop, kind):
    channel = shop[kind]
    generate_orders(sandbox, kind, ORDERS_PER_CHANNEL[kind])
    # Each stored page is pushed on commit (inline here), 12 SKUs a push: the second push meets the second
    # expiry, after page two met the first. (Both at once would leave no good token to adopt: see the report.)
    sandbox.faults(kind, account(kind), [{"path": SECOND_ORDER_PAGE[kind], "type": "expire_token"},
                                         {"path": PUSH_CALL[kind], "type": "expire_token", "after": 14}])
    refreshes_before = sandbox.received(kind, account(kind))["refresh_tokens_used"]

    run_like_a_worker(orders_download_task, channel.pk)
    push_everywhere(shop)

    assert_converged(sandbox, shop)
    assert runs(channel) == [("success", "")]
    assert runs(channel, SyncRun.Kind.INVENTORY)[-1] == ("success", "")
    # One refresh per expiry that a call actually met (how many calls the second push makes varies with
    # how the pages' pushes coalesce), never a storm of refreshes.
    assert refreshes_before + 1 <= sandbox.received(kind, account(kind))["refresh_tokens_used"] <= refreshes_before + 2
    channel.refresh_from_db()
    assert not channel.needs_reauthorisation


def test_a_despatch_confirmed_through_server_errors_is_confirmed_once(sandbox, shop):
    generate_orders(sandbox, "amazon", 1)
    run_like_a_worker(orders_download_task, shop["amazon"].pk)
    order = Order.objects.get(channel=shop["amazon"])
    sandbox.faults("amazon", account("amazon"), [{"path": "shipmentConfirmation", "type": "500", "times": 2}])

    # Processing queues the confirmation on commit; inline, its first attempt's retry surfaces here.
    royal_mail = PostalService.objects.create(name="Royal Mail Tracked 48", carrier_code="Royal Mail")
    with pytest.raises(Retry):
        order_process(order_id=order.pk, tracking_number="TRACK-1", postal_service_id=royal_mail.pk)
    order.refresh_from_db()
    assert order.despatch_error.startswith("Will retry") and not order.despatch_sent_at
    assert run_like_a_worker(despatch_confirm_task, order.pk) == "sent"
    assert run_like_a_worker(despatch_confirm_task, order.pk) == "nothing to send"

    shipments = sandbox.received("amazon", account("amazon"))["shipments"]
    assert [s["order_id"] for s in shipments] == [order.channel_order_id]
    order.refresh_from_db()
    assert order.despatch_sent_at and not order.despatch_error
    push_everywhere(shop)
    assert_converged(sandbox, shop)


def test_a_push_cut_short_is_sent_again_whole_and_converges(sandbox, shop):
    channel = shop["amazon"]
    updates = {sku: s["updates"] for sku, s in sandbox.received("amazon", account("amazon"))["stock"].items()}
    sandbox.faults("amazon", account("amazon"), [{"path": PUSH_CALL["amazon"], "type": "500", "after": 4,
                                                  "times": 50}])

    # A stock count changes every SKU; its push (queued on commit, inline here) fails after four listings.
    with pytest.raises(Retry):
        levels = StockLevel.objects.all()
        stock_levels_set_bulk(rows=[(level.stock_item_id, level.location_id, 500) for level in levels],
                              reason=StockMovement.Reason.ADJUSTMENT)
    sandbox.clear_faults("amazon", account("amazon"))
    run_like_a_worker(inventory_push_task, channel.pk)

    now = {sku: s["updates"] for sku, s in sandbox.received("amazon", account("amazon"))["stock"].items()}
    # What a batch had accepted before failing is recorded only with the batch, so the retry sends those
    # four again: harmless, a channel is always sent the absolute quantity, never a difference.
    assert sorted(now[sku] - updates[sku] for sku in now) == [1] * 8 + [2] * 4
    assert [status for status, _ in runs(channel, SyncRun.Kind.INVENTORY)][-2:] == ["failed", "success"]
    push_everywhere(shop)
    assert_converged(sandbox, shop)

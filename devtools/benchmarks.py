"""What the sync benchmarks (bench_sync, load_test) share: percentiles, the connector-quota switch, the
check that the database they write to is migrated, and the removal of the shop they built."""

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import override_settings

from channels.models import Channel
from channels.services import channels_delete
from inventory.models import Location, StockItem, StockLevel, StockMovement
from orders.models import Order


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank); 0 for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else 0.0


def add_quota_argument(parser) -> None:
    parser.add_argument(
        "--published-limits", action="store_true",
        help="Keep the connectors under the channels' published quotas (EKM: 2 calls/s, one per order's items "
        "and one per SKU pushed), which measures the quotas rather than the hub. By default they are lifted.",
    )


def connector_quotas(*, published: bool) -> override_settings:
    """CHANNEL_RATE_LIMITS for one benchmark run only; restored when the run ends."""
    return override_settings(CHANNEL_RATE_LIMITS="published" if published else "off")


def database_migrated_or_error() -> None:
    """Fail with one line, not a traceback from the first query, on a database not yet migrated."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError(f"The database {connection.settings_dict['NAME']!r} is not migrated: "
                           "run `python manage.py migrate` first.")


@transaction.atomic
def scratch_shop_delete(*, prefix: str) -> None:
    """Remove what a benchmark built: channels named `prefix-…` with their orders and listings, stock items
    `PREFIX-…` with their levels and ledger, and the `prefix-warehouse` location. Each channel's beat rows
    go with it (channels_delete)."""
    Order.objects.filter(channel__name__startswith=f"{prefix}-").delete()
    items = StockItem.objects.filter(sku__startswith=f"{prefix.upper()}-")
    StockMovement.objects.filter(stock_item__in=items).delete()
    StockLevel.objects.filter(stock_item__in=items).delete()
    channels_delete(channel_ids=Channel.objects.filter(name__startswith=f"{prefix}-").values_list("pk", flat=True))
    items.delete()
    Location.objects.filter(name=f"{prefix}-warehouse").delete()

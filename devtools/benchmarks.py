"""What the sync benchmarks (bench_sync, load_test) share: percentiles, the connector-quota switch, the
check that the database they write to is migrated, the hub processes they start and stop (workers, beat), and
the removal of the shop they built."""

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

from celery import current_app
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import override_settings

from channels.models import Channel
from channels.services import channels_delete
from inventory.models import Location, StockItem, StockLevel, StockMovement
from orders.models import Order

QUEUES = "default,orders,inventory,listings,despatch"
CELERY = [sys.executable, "-m", "celery", "-A", "config"]


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


def hub_env(**extra: str) -> dict[str, str]:
    """The environment of the hub processes a benchmark starts (workers, beat, the web server): this process's
    database (the tests' own one under pytest), Redis and connector quotas, with tasks really queued."""
    database = connection.settings_dict
    if connection.vendor == "postgresql":
        user, password = quote(database["USER"] or "", safe=""), quote(database["PASSWORD"] or "", safe="")
        url = f"postgres://{user}:{password}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    else:
        url = f"sqlite:///{database['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL, "LOG_LEVEL": "WARNING",
            "CELERY_TASK_ALWAYS_EAGER": "false", "CHANNEL_RATE_LIMITS": settings.CHANNEL_RATE_LIMITS, **extra}


def worker_command(*, hostname: str, concurrency: int, queues: str = QUEUES) -> list[str]:
    return [*CELERY, "worker", "-Q", queues, "--concurrency", str(concurrency), "--loglevel", "WARNING",
            "--hostname", f"{hostname}@%h", "--without-gossip", "--without-mingle"]


def beat_command(*, scratch: str) -> list[str]:
    """Beat on the database scheduler (CELERY_BEAT_SCHEDULER), as `make run` has it; its state file in `scratch`."""
    return [*CELERY, "beat", "--loglevel", "WARNING", "-s", str(Path(scratch) / "beat"), "--pidfile="]


def hub_process_start(command: list[str], *, env: dict[str, str]) -> subprocess.Popen:
    """A session of its own, so stopping it stops its children (a worker's pool) too."""
    return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def hub_processes_stop(processes: list[subprocess.Popen], *, grace: float = 30) -> int:
    """Stop them all and wait until each has exited; returns how many had to be killed. SIGTERM to each leader
    only: a worker then stops warm, its pool finishing the tasks it runs (SIGTERM to the whole group would end
    them mid-call); SIGKILL to a group still running after `grace` s. Called while the sandbox still answers,
    so no task meets it closed."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    killed = 0
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed += 1
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    processes.clear()
    return killed


def workers_ready_or_error(processes: list[subprocess.Popen], *, timeout: float = 60) -> None:
    """Wait until a worker answers on the broker; one line if none does, or one of the processes died."""
    deadline = time.monotonic() + timeout
    while not current_app.control.ping(timeout=1):
        dead = [process for process in processes if process.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise CommandError("The Celery worker did not start" + (f" (exit {dead[0].returncode})." if dead
                                                                      else f" within {timeout:g} s."))

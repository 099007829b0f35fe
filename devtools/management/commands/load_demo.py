import time

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from channels.connectors.base import ChannelError
from devtools.demo import DEMO_PASSWORD, demo_load, demo_user
from sandbox.control import SandboxControlError


class Command(BaseCommand):
    help = (
        "Load the demo shop: two warehouses, a few hundred stock items, one channel of each kind talking to "
        "the sandbox, their listings and a few orders, and a demo superuser. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default=settings.SANDBOX_URL, help="Where run_sandbox listens.")
        parser.add_argument("--wait", type=float, default=20, help="Seconds to wait for the sandbox to start.")
        parser.add_argument(
            "--allow-production", action="store_true",
            help="Load even with DEBUG off (creates a superuser with a published password).",
        )

    def handle(self, *args, sandbox_url, wait, allow_production, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError("DEBUG is off: the demo creates a superuser with a known password; "
                               "pass --allow-production if you really mean it.")
        self._wait_for_sandbox(sandbox_url, wait)
        try:
            report = demo_load(sandbox_url=sandbox_url)
        except (ChannelError, SandboxControlError, requests.RequestException) as exc:
            raise CommandError(f"The demo could not talk to the sandbox at {sandbox_url}: {exc}") from exc
        for line in report:
            self.stdout.write(line)
        username, created = demo_user()
        note = "" if created else " (existing user: password unchanged if you changed it)"
        self.stdout.write(self.style.SUCCESS(f"Demo login: {username} / {DEMO_PASSWORD}{note}"))

    def _wait_for_sandbox(self, url: str, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                requests.get(f"{url.rstrip('/')}/_control/health", timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() >= deadline:
                    raise CommandError(
                        f"No sandbox at {url}: start it with `python manage.py run_sandbox` (make run does)."
                    ) from None
                time.sleep(0.3)

"""`make run`: the sandbox, the demo shop, a Celery worker with beat and the admin, stopped together.

Each process runs in a process group of its own, so Ctrl-C on the terminal reaches only this command, which
stops them one after the other, last started first: SIGTERM (a Celery worker then stops its pool itself,
warm), then SIGKILL to the whole group if it still runs after the grace period (a worker in warm shutdown
waits for its tasks; the tasks are idempotent and acknowledged late, so cutting one short loses nothing).
If one of them dies, the others are stopped too and the command exits non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

QUEUES = "default,orders,inventory,listings,despatch"


class Command(BaseCommand):
    help = "Start the sandbox, load the demo, then the worker with beat and the admin; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Where the admin listens.")
        parser.add_argument("--sandbox-port", type=int, default=8100, help="Where the sandbox listens.")
        parser.add_argument("--grace", type=float, default=10, help="Seconds each process gets to stop.")

    def handle(self, *args, port, sandbox_port, grace, **options):
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        celery = str(Path(sys.executable).with_name("celery"))
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        self.running: list[tuple[str, subprocess.Popen]] = []
        self.grace = grace
        stop_requested = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: stop_requested.append(signum))
        try:
            self._start("sandbox", [*manage, "run_sandbox", "--port", str(sandbox_port)])
            demo = subprocess.run([*manage, "load_demo", "--sandbox-url", sandbox_url], check=False)
            if stop_requested:
                return
            if demo.returncode:
                raise CommandError("The demo could not be loaded (see above); everything started is stopped.")
            self._start("worker", [celery, "-A", "config", "worker", "-B", "-Q", QUEUES, "--concurrency", "2",
                                   "--loglevel", "INFO"])
            self._start("admin", [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"])
            self.stdout.write(f"\nStockline admin: http://127.0.0.1:{port}/admin/  (login printed above)\n"
                              "Ctrl-C stops the admin, the worker and the sandbox.\n")
            while not stop_requested:
                for name, process in self.running:
                    if process.poll() is not None:
                        raise CommandError(f"The {name} stopped (exit {process.returncode}); stopping the rest.")
                time.sleep(0.5)
        finally:
            self._stop_all()

    def _start(self, name: str, command: list[str]) -> None:
        # A group of its own: the terminal's Ctrl-C reaches this command only, which stops them in order.
        self.running.append((name, subprocess.Popen(command, start_new_session=True)))

    def _stop_all(self) -> None:
        # Last started, first stopped: the worker finishes with the sandbox still there to answer it.
        for name, process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"The {name} did not stop within {self.grace:g} s: killed.")
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.running.clear()

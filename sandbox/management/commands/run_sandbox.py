"""`python manage.py run_sandbox`: serve the channel API emulations (see sandbox/README.md)."""

from django.core.management.base import BaseCommand

from sandbox.server import DEFAULT_DB, SandboxServer


class Command(BaseCommand):
    help = "Serve the local Amazon / EKM / Rakuten sandbox APIs with their control API."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--db", default=str(DEFAULT_DB), help="the sandbox's own SQLite file")

    def handle(self, *args, host: str, port: int, db: str, **options) -> None:
        server = SandboxServer((host, port), db)
        self.stdout.write(f"Sandbox serving on {server.base_url} (state in {db}); Ctrl-C to stop.")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Sandbox stopping.")
        finally:
            server.server_close()

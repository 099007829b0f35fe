"""Start a sandbox in a background thread, for tests and benchmarks."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.server import SandboxServer


@contextmanager
def running_sandbox(db_path: str | Path | None = None, *, check_answers: bool = False) -> Iterator[str]:
    """Yield the base URL of a sandbox on a free port; its state lives in `db_path` (a temp file if None).

    `check_answers` turns every answer outside the vendor's contract into a 500 (the tests' sandbox)."""
    with tempfile.TemporaryDirectory(prefix="sandbox-") as scratch:
        server = SandboxServer(("127.0.0.1", 0), db_path or Path(scratch) / "sandbox.sqlite3",
                               check_answers=check_answers)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="sandbox-server", daemon=True)
        thread.start()
        try:
            yield server.base_url
        finally:
            server.shutdown()
            thread.join()
            server.server_close()

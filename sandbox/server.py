"""The sandbox's HTTP server: the standard library's threaded server in front of `SandboxApp`."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from sandbox.app import SandboxApp
from sandbox.store import Store
from sandbox.web import DROP, Request

logger = logging.getLogger("sandbox")

DEFAULT_DB = Path("var/sandbox.sqlite3")


class SandboxRequestHandler(BaseHTTPRequestHandler):
    # Keep-alive: connectors reuse one `requests.Session`, and benchmarks depend on it.
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, the body waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server_version = "StocklineSandbox/1.0"

    def do_GET(self) -> None:
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = Request(self.command, parts.path, parts.query, self.headers, body, host)
        response = self.server.app.handle(request)
        if response is DROP:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args) -> None:
        logger.debug("sandbox.http %s " + format, self.address_string(), *args)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open many connections at once; the default backlog of 5 refuses some.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], db_path: str | Path = DEFAULT_DB, *,
                 check_answers: bool = False) -> None:
        self.store = Store(db_path)
        self.app = SandboxApp(self.store, check_answers=check_answers)
        super().__init__(address, SandboxRequestHandler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def shutdown(self) -> None:
        self.app.stopping.set()
        super().shutdown()

    def server_close(self) -> None:
        super().server_close()
        self.store.close()

"""The HTTP client against a hostile channel endpoint on 127.0.0.1, acting as an attacker would.

A channel URL is part of its credentials: whoever controls the endpoint (or a host it redirects to) must get
no secret beyond what it was meant to get, and must not be able to hold a worker or fill its memory.
127.0.0.1:A and 127.0.0.1:B are different origins, and so are localhost and 127.0.0.1 on the same port.
"""

import gzip
import logging
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from channels.connectors import CONNECTORS
from channels.connectors.base import (
    ChannelError,
    ChannelHostRefused,
    ChannelResponseTooLarge,
    ChannelTransientError,
    ConnectorConfig,
    HttpBounds,
)
from channels.connectors.http import MAX_REDIRECTS, HttpClient
from channels.connectors.ratelimit import InProcessLimiter
from tests.channels.connectors.conftest import MemoryStore

SECRET = "client-secret-DO-NOT-LEAK-42"
REFRESH = "refresh-token-DO-NOT-LEAK-43"
ACCESS = "access-token-DO-NOT-LEAK-44"
LOOPBACK = ("127.0.0.1", "localhost")
MIB = 1024 * 1024


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes
    peer: tuple

    def carries(self, secret: str) -> bool:
        return secret in self.path or secret in self.body.decode("latin-1") or any(
            secret in value for value in self.headers.values())


@dataclass
class Hostile:
    """A server on 127.0.0.1 that records every request and answers with `script(handler, request)`."""

    server: ThreadingHTTPServer
    received: list = field(default_factory=list)
    script: object = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def carried(self, secret: str) -> bool:
        return any(request.carries(secret) for request in self.received)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(self.command, self.path, dict(self.headers.items()), self.rfile.read(length),
                           self.client_address)
        hostile = self.server.hostile
        hostile.received.append(request)
        try:
            hostile.script(self, request)
        except OSError:
            # The client hung up on us, which is what a bounded client does.
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = _any

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        named = {"Content-Length": str(len(body))} | {name.replace("_", "-"): value for name, value in headers.items()}
        for name, value in named.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, data: bytes, *, every: float) -> None:
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(every)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up on a hostile answer is the point of these tests, not a failure.
        pass


@pytest.fixture
def hostile():
    servers = []

    def start(script=None) -> Hostile:
        server = Server(("127.0.0.1", 0), Handler)
        server.hostile = Hostile(server, script=script)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server.hostile

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client(base_url: str, *, allowed=LOOPBACK, auth=None, **options) -> HttpClient:
    return HttpClient(
        service="Test", base_url=base_url, limiter=InProcessLimiter(sleep=lambda s: None), limits={},
        bucket_prefix="1", secrets=lambda: {SECRET, REFRESH, ACCESS}, auth=auth, allowed_hosts=allowed,
        **options,
    )


def amazon_auth(refresh: bool) -> dict[str, str]:
    return {"x-amz-access-token": ACCESS}


def redirect_to(location: str, status: int = 302):
    return lambda handler, request: handler.send(status, Location=location)


def ok_json(handler, request):
    handler.send(200, b'{"ok": true}', Content_Type="application/json")


# --- Redirects --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308, 302])
def test_a_token_endpoint_redirecting_to_another_port_never_gets_the_client_secret_again(hostile, status, caplog):
    caplog.set_level(logging.DEBUG)
    elsewhere = hostile(ok_json)
    token_endpoint = hostile(redirect_to(f"{elsewhere.url()}/auth/o2/token", status))
    form = {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_secret": SECRET}

    with pytest.raises(ChannelHostRefused) as refused:
        client(token_endpoint.url()).request("POST", f"{token_endpoint.url()}/auth/o2/token", operation="token",
                                             absolute=True, authenticated=False, data=form)

    assert elsewhere.received == []
    assert len(token_endpoint.received) == 1
    assert f"127.0.0.1:{elsewhere.port}" in str(refused.value)
    assert SECRET not in str(refused.value) and REFRESH not in str(refused.value)
    assert not any(SECRET in r.getMessage() or REFRESH in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("elsewhere_host", ["localhost", "127.0.0.1 on another port"])
def test_an_api_call_redirected_to_another_host_does_not_carry_the_access_token_there(hostile, elsewhere_host):
    elsewhere = hostile(ok_json)
    api = hostile()
    target = f"{api.url('localhost')}/steal" if elsewhere_host == "localhost" else f"{elsewhere.url()}/steal"
    api.script = redirect_to(target)

    with pytest.raises(ChannelHostRefused, match="redirected"):
        client(api.url(), auth=amazon_auth).request("GET", "/orders", operation="search_orders")

    assert [r.path for r in api.received] == ["/orders"]
    assert not elsewhere.carried(ACCESS)
    assert elsewhere.received == []


def test_a_same_origin_redirect_is_followed_and_every_hop_is_checked_again(hostile):
    elsewhere = hostile(ok_json)
    hops = {"/orders": "/orders/moved", "/orders/moved": "/orders/final", "/chain": "/chain/next",
            "/chain/next": f"{elsewhere.url()}/steal"}

    def script(handler, request):
        if request.path in hops:
            handler.send(302, Location=hops[request.path])
        else:
            ok_json(handler, request)

    api = hostile(script)
    http = client(api.url(), auth=amazon_auth)

    assert http.call_json("GET", "/orders", operation="search_orders") == {"ok": True}
    assert [r.path for r in api.received] == ["/orders", "/orders/moved", "/orders/final"]
    assert all(r.headers.get("x-amz-access-token") == ACCESS for r in api.received)

    with pytest.raises(ChannelHostRefused):
        http.request("GET", "/chain", operation="search_orders")
    assert elsewhere.received == []


def test_a_redirect_loop_ends_with_an_error(hostile):
    api = hostile(redirect_to("/loop"))
    with pytest.raises(ChannelTransientError, match="more than"):
        client(api.url()).request("GET", "/loop", operation="op")
    assert len(api.received) == MAX_REDIRECTS + 1


# --- Allowed hosts ----------------------------------------------------------------------------------------


def test_no_call_goes_to_a_host_outside_the_allowed_ones_not_even_a_token_call(hostile):
    api = hostile(ok_json)
    asked_for_a_token = []
    http = client(api.url("localhost"), allowed={"127.0.0.1"},
                  auth=lambda refresh: asked_for_a_token.append(refresh) or {"x-amz-access-token": ACCESS})

    with pytest.raises(ChannelHostRefused, match="localhost"):
        http.request("GET", "/orders", operation="search_orders")
    with pytest.raises(ChannelHostRefused, match="localhost"):
        http.request("POST", f"{api.url('localhost')}/auth/o2/token", operation="token", absolute=True,
                     authenticated=False, data={"client_secret": SECRET})

    assert api.received == []
    assert asked_for_a_token == []


def test_no_allowed_host_refuses_every_call(hostile):
    api = hostile(ok_json)
    with pytest.raises(ChannelHostRefused, match="none is set"):
        client(api.url(), allowed=frozenset()).request("GET", "/x", operation="op")
    assert api.received == []


def test_credentials_go_over_https_only_except_to_this_machine():
    with pytest.raises(ChannelHostRefused, match="without https"):
        client("http://api.example.test", allowed={"api.example.test"}).request("GET", "/x", operation="op")


def test_a_document_url_gets_no_credential_and_no_secret(hostile):
    storage = hostile(lambda handler, request: handler.send(200, b"sku\tqty\n"))
    http = client("https://api.example.test", allowed={"api.example.test", "127.0.0.1"}, auth=amazon_auth)

    assert http.download(f"{storage.url()}/report?X-Amz-Signature=abc", operation="download") == b"sku\tqty\n"
    with pytest.raises(ChannelHostRefused, match="secrets"):
        http.download(f"{storage.url()}/report?token={ACCESS}", operation="download")
    with pytest.raises(ChannelHostRefused, match="without https"):
        http.download("http://169.254.169.254/latest/meta-data/", operation="download")

    assert len(storage.received) == 1
    assert not storage.carried(ACCESS)


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_no_connector_sends_its_credentials_outside_its_allowed_hosts(hostile, kind):
    """The channel's URLs point at a host the settings do not allow (a tampered row, a staging URL left over)."""
    endpoint = hostile(ok_json)
    cls = CONNECTORS[kind]
    declared = frozenset(host for hosts in cls.allowed_hosts.values() for host in hosts)
    config = ConnectorConfig(channel_id=1, kind=kind, name="shop", api_base_url=endpoint.url(),
                             auth_base_url=endpoint.url(), seller_id="seller", marketplace_id="A1F83G8C2ARO7P",
                             allowed_hosts=declared)
    store = MemoryStore(client_id="client-id-1", client_secret=SECRET, refresh_token=REFRESH, token=SECRET)
    connector = cls(config, store, InProcessLimiter(sleep=lambda s: None))

    try:
        connector.test_connection()
    except ChannelError as exc:
        failure = exc
    else:
        failure = None

    assert endpoint.received == [], "the connector sent a call to a host outside its allowed hosts"
    assert isinstance(failure, ChannelHostRefused)


@pytest.mark.django_db
def test_the_hub_gives_each_connector_its_kinds_hosts_and_the_settings_bounds(settings):
    from channels.sync.connections import channel_connector
    from tests.channels.factories import ChannelFactory

    settings.CHANNEL_HTTP_DEADLINE_SECONDS = 7
    settings.CHANNEL_HTTP_CONNECT_TIMEOUT = 2
    settings.CHANNEL_HTTP_MAX_RESPONSE_BYTES = 1000
    settings.CHANNEL_HTTP_DOCUMENT_DEADLINE_SECONDS = 70
    settings.CHANNEL_HTTP_MAX_DOCUMENT_BYTES = 5000
    config = channel_connector(channel=ChannelFactory()).config
    assert config.http == HttpBounds(deadline=7, connect_timeout=2, max_response_bytes=1000, document_deadline=70,
                                     max_document_bytes=5000)
    assert "api.ekm.net" in config.allowed_hosts


# --- Deadline ---------------------------------------------------------------------------------------------


def drip_body(handler, request):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.flush()
    handler.drip(b" " * 1000, every=0.5)


def drip_headers(handler, request):
    handler.drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Slow: " + b"a" * 1000, every=0.5)


def silent_after_headers(handler, request):
    handler.send_response(200)
    handler.send_header("Content-Length", "10")
    handler.end_headers()
    handler.wfile.flush()
    time.sleep(10)


@pytest.mark.parametrize("script", [drip_body, drip_headers, silent_after_headers])
def test_an_answer_dripping_a_byte_at_a_time_ends_at_the_deadline(hostile, script):
    api = hostile(script)
    http = client(api.url(), auth=amazon_auth, deadline=2)

    started = time.monotonic()
    with pytest.raises(ChannelTransientError, match="no complete answer within 2 s"):
        http.request("GET", "/sellers/v1/marketplaceParticipations", operation="op")
    assert time.monotonic() - started < 3.5


def test_a_document_dripping_ends_at_the_document_deadline(hostile):
    storage = hostile(drip_body)
    started = time.monotonic()
    with pytest.raises(ChannelTransientError, match="no complete answer within 2 s"):
        client(storage.url(), document_deadline=2).download(f"{storage.url()}/report", operation="download")
    assert time.monotonic() - started < 3.5


# --- Sizes ------------------------------------------------------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    return b"".join(packer.compress(zeros) for _ in range(size // MIB)) + packer.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """64 KiB on the wire, 64 MiB once inflated."""
    return gzip_of_zeros(64 * MIB)


def test_a_gzip_bomb_is_refused_while_it_inflates(hostile, bomb):
    assert len(bomb) < MIB / 8
    api = hostile(lambda handler, request: handler.send(200, bomb, Content_Encoding="gzip",
                                                          Content_Type="application/json"))
    with pytest.raises(ChannelResponseTooLarge, match="once decompressed"):
        client(api.url(), max_response_bytes=1 * MIB).call_json("GET", "/orders", operation="op")


def test_a_gzip_document_bomb_is_refused_while_it_inflates(hostile, bomb):
    storage = hostile(lambda handler, request: handler.send(200, bomb))
    with pytest.raises(ChannelResponseTooLarge, match="once decompressed"):
        client(storage.url(), max_document_bytes=4 * MIB).download(f"{storage.url()}/report.gz",
                                                                    operation="download", gunzip=True)


def test_a_document_compressed_twice_is_bounded_after_both(hostile):
    document = gzip.compress(b"sku\tquantity\n" + b"A-1\t5\n" * 200_000)
    storage = hostile(lambda handler, request: handler.send(200, gzip.compress(document), Content_Encoding="gzip"))
    http = client(storage.url(), max_document_bytes=2 * MIB)
    assert len(http.download(f"{storage.url()}/r", operation="download", gunzip=True)) == 13 + 6 * 200_000
    with pytest.raises(ChannelResponseTooLarge):
        client(storage.url(), max_document_bytes=MIB).download(f"{storage.url()}/r", operation="download",
                                                                gunzip=True)


def endless_chunks(handler, request):
    """Claims ten bytes, then sends chunked: HTTP says Transfer-Encoding wins, so the length is a lie."""
    handler.send_response(200)
    handler.send_header("Content-Length", "10")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"x" * 65536
    for _ in range(1000):
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


def test_a_plain_body_larger_than_the_limit_is_refused_while_it_streams(hostile):
    api = hostile(endless_chunks)
    with pytest.raises(ChannelResponseTooLarge, match="larger than the 1 MiB"):
        client(api.url(), max_response_bytes=MIB).request("GET", "/orders", operation="op")


def test_a_declared_length_over_the_limit_is_refused_before_the_body_comes(hostile):
    def announce_and_wait(handler, request):
        handler.send_response(200)
        handler.send_header("Content-Length", str(64 * MIB))
        handler.end_headers()
        handler.wfile.flush()
        time.sleep(5)

    api = hostile(announce_and_wait)
    started = time.monotonic()
    with pytest.raises(ChannelResponseTooLarge):
        client(api.url(), max_response_bytes=MIB, deadline=10).request("GET", "/orders", operation="op")
    assert time.monotonic() - started < 2


def test_a_length_lying_short_reads_no_more_than_it_declared(hostile):
    api = hostile(lambda handler, request: handler.send(200, b'{"a": 1}' + b" " * 5 * MIB, Content_Length="8"))
    assert client(api.url(), max_response_bytes=MIB).call_json("GET", "/x", operation="op") == {"a": 1}


def test_a_length_lying_long_is_a_broken_answer_not_a_hang(hostile):
    def cut_short(handler, request):
        handler.send(200, b'{"a": 1}', Content_Length="5000")
        handler.close_connection = True

    api = hostile(cut_short)
    started = time.monotonic()
    with pytest.raises(ChannelTransientError, match="broke off"):
        client(api.url(), deadline=10).request("GET", "/x", operation="op")
    assert time.monotonic() - started < 2


def test_a_refused_answer_is_still_a_channel_error_with_no_secret(hostile):
    api = hostile(lambda handler, request: handler.send(400, f'{{"error": "bad {SECRET}"}}'.encode()))
    with pytest.raises(ChannelError) as caught:
        client(api.url()).request("GET", "/x", operation="op")
    assert SECRET not in str(caught.value)


def test_a_watchdog_shuts_a_socket_the_server_keeps_open(hostile):
    """The deadline holds on a kept-alive connection too: the second call reuses the first call's socket."""
    calls = []

    def first_fine_then_drip(handler, request):
        calls.append(request.path)
        if len(calls) == 1:
            ok_json(handler, request)
        else:
            drip_body(handler, request)

    api = hostile(first_fine_then_drip)
    http = client(api.url(), deadline=1.5)
    assert http.call_json("GET", "/a", operation="op") == {"ok": True}
    started = time.monotonic()
    with pytest.raises(ChannelTransientError, match="within 1.5 s"):
        http.request("GET", "/b", operation="op")
    assert time.monotonic() - started < 3
    assert len({request.peer for request in api.received}) == 1

"""EKM's webhooks in the sandbox: subscriptions as the swagger has them, and deliveries to the subscribers when the
control API places or changes an order, off the control API's answer, on EKM's retry schedule."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox import ekm as sandbox_ekm
from sandbox.control import SandboxControl
from sandbox.ekm import webhook_delay
from sandbox.testing import running_sandbox
from tests.sandbox.conftest import ekm_login, make_account


class Receiver:
    """An HTTP endpoint that records what is POSTed to it and answers with the statuses it is given, in turn."""

    def __init__(self, *statuses: int, delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.received: list[tuple[float, dict]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(receiver.delay)
                with receiver.arrived:
                    receiver.received.append((time.monotonic(), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
        return [body for _, body in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receivers = []

    def make(*statuses, delay=0.0):
        receivers.append(Receiver(*statuses, delay=delay))
        return receivers[-1]

    yield make
    for made in receivers:
        made.close()


@pytest.fixture
def shop(sandbox):
    account = make_account(sandbox, "ekm", "teapots")
    ekm_login(account)
    return account


def subscribe(account, topic, endpoint, enabled=True):
    answer = account.session.post(f"{account.url}/api/v2/Webhooks",
                                  json={"topic": topic, "endpoint": endpoint, "is_enabled": enabled})
    assert answer.status_code == 201


def subscriptions(account):
    return account.session.get(f"{account.url}/api/v2/Webhooks/webhooks").json()["data"]


def test_the_access_token_is_a_jwt_naming_the_merchant(sandbox):
    account = make_account(sandbox, "ekm", "teapots")
    token = ekm_login(account)["access_token"]
    claims = token.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"] == "teapots"
    assert account.session.get(f"{account.url}/api/v1/settings/shop_information").status_code == 200


def test_a_subscription_is_pointed_elsewhere_and_enabled_by_put(shop):
    subscribe(shop, "order.created", "https://old.example.com/hook", enabled=False)
    (subscription,) = subscriptions(shop)
    answer = shop.session.put(f"{shop.url}/api/v2/Webhooks/{subscription['id']}",
                              json={"topic": "order.created", "endpoint": "https://hub.example.com/hook",
                                    "is_enabled": True})
    assert (answer.status_code, answer.content) == (200, b"")
    (updated,) = subscriptions(shop)
    assert (updated["id"], updated["endpoint"], updated["is_enabled"]) == (
        subscription["id"], "https://hub.example.com/hook", True)
    unknown = shop.session.put(f"{shop.url}/api/v2/Webhooks/7d1c4a53-9d5e-4a0e-9f53-2b8e1c1f0d11",
                               json={"is_enabled": False})
    assert (unknown.status_code, unknown.content) == (404, b"")


def test_an_order_placed_is_delivered_to_each_enabled_subscription_of_its_topic(sandbox, shop, receiver):
    created, other, disabled = receiver(), receiver(), receiver()
    subscribe(shop, "order.created", created.url)
    subscribe(shop, "order.created", other.url)
    subscribe(shop, "order.created", disabled.url, enabled=False)
    subscribe(shop, "order.updated", other.url)
    first, second = sandbox.orders("ekm", "teapots", [{"items": [{"sku": "MUG"}]}, {"items": [{"sku": "MUG"}]}])
    expected = [{"username": "teapots", "topic": "order.created", "entity_id": order_id}
                for order_id in (first, second)]
    assert created.wait_for(2) == expected
    assert other.wait_for(2) == expected
    sandbox.order_status("ekm", "teapots", first, "PROCESSING")
    assert other.wait_for(3)[2] == {"username": "teapots", "topic": "order.updated", "entity_id": first}
    assert created.wait_for(3, timeout=0.5) == expected
    assert disabled.received == []


def test_the_control_api_answers_before_the_delivery_is_answered(sandbox, shop, receiver):
    slow = receiver(delay=3)
    subscribe(shop, "order.created", slow.url)
    started = time.monotonic()
    sandbox.orders("ekm", "teapots", [{"items": [{"sku": "MUG"}]}])
    assert time.monotonic() - started < 2
    assert len(slow.wait_for(1)) == 1


def test_a_delivery_not_answered_200_is_sent_again_on_ekms_schedule_then_given_up(
    sandbox, shop, receiver, monkeypatch
):
    monkeypatch.setattr(sandbox_ekm, "WEBHOOK_RETRIES", 3)
    failing = receiver(500, 503, 404, 500)
    subscribe(shop, "order.created", failing.url)
    (order_id,) = sandbox.orders("ekm", "teapots", [{"items": [{"sku": "MUG"}]}])
    assert len(failing.wait_for(4)) == 4
    times = [at for at, _ in failing.received]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    for retry, gap in enumerate(gaps, start=1):
        assert webhook_delay(retry) <= gap < webhook_delay(retry) + 1
    # Three retries, then no more.
    assert len(failing.wait_for(5, timeout=webhook_delay(4) + 1)) == 4
    assert {body["entity_id"] for _, body in failing.received} == {order_id}


def test_the_retry_delays_are_the_swaggers():
    assert [round(webhook_delay(n) * 1000, 2) for n in (1, 2, 3, 4)] == [200, 394, 776.18, 1529.07]
    assert 5 * 3600 < webhook_delay(18) < 6 * 3600


def delivery_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "sandbox-ekm-webhooks"}


def test_a_delivery_thread_stops_quietly_when_the_sandbox_stops(receiver):
    failing = receiver(*[500] * 25)
    before = delivery_threads()
    with running_sandbox(check_answers=True) as base_url:
        control = SandboxControl(base_url)
        account = make_account(control, "ekm", "teapots")
        ekm_login(account)
        subscribe(account, "order.created", failing.url)
        control.orders("ekm", "teapots", [{"items": [{"sku": "MUG"}]}])
        failing.wait_for(2)
        (thread,) = delivery_threads() - before
    # Still retrying when the sandbox stopped (20 retries, a day), it ends at once instead.
    thread.join(timeout=1)
    assert not thread.is_alive()
    assert len(failing.received) < 6

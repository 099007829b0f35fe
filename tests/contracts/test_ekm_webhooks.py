"""EKM's webhooks against channels/connectors/ekm/contract/webhooks.json: what the connector sends to subscribe,
unsubscribe and read a hinted order holds to the contract; so do the sandbox's answers and its deliveries."""

import json
import queue
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import responses

from channels.connectors.contracts import contract_load
from channels.connectors.ekm.connector import EkmConnector
from channels.connectors.ratelimit import InProcessLimiter
from tests.channels.connectors.conftest import EKM_BASE, MemoryStore, ekm_config, fixture_json
from tests.contracts.helpers import answer_undeclared, request_parts
from tests.sandbox.conftest import ekm_login, make_account

CONTRACT = contract_load("ekm")
WRAP = {"meta": {}, "links": [], "validation_result": None, "errors": None}
ENDPOINT = "https://hub.example.com/webhooks/2/0123456789abcdef0123456789abcdef/"
OLD = {"id": "3f0e2d5c-8b1a-4c7e-9d6f-1a2b3c4d5e6f", "topic": "order.created", "merchant_username": "teapots",
       "client_id": "c", "endpoint": "https://old.example.com/hook", "is_enabled": False, "disabled_reason": None}
COPY = {**OLD, "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}
ORDER = fixture_json("ekm_orders_page1.json")["data"][0]
ANSWERS = {
    "token": {"access_token": "h.eyJzdWIiOiAidGVhcG90cyJ9.s", "expires_in": 3600, "token_type": "Bearer",
              "refresh_token": "r2"},
    "Webhooks_GetAll": {**WRAP, "data": [OLD, COPY]},
    "Currency_GetCurrency": {**WRAP, "data": {"currency_code": "GBP"}},
    "Orders_GetById": {**WRAP, "data": ORDER},
    "Orders_GetItems": fixture_json("ekm_order_123_items.json"),
}


@pytest.fixture
def ekm_channel():
    """EKM as `responses`: each request checked against the contract, answered with a contract-valid answer."""
    seen: list[tuple[str, list[str]]] = []

    def answer(request):
        path, parts = urlsplit(request.url).path, request_parts(request)
        matched = CONTRACT.match(request.method, path)
        if matched is None:
            seen.append((f"{request.method} {path}", ["no such operation in the contract"]))
            return 404, {}, ""
        operation, _ = matched
        seen.append((operation.operation_id, operation.request_errors(**parts)))
        body = ANSWERS.get(operation.operation_id)
        status = 201 if operation.operation_id == "Webhooks_Post" else 200
        assert operation.response_errors(status, body) == [], operation.operation_id
        return status, {}, "" if body is None else json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "PUT", "POST", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(EKM_BASE) + "/.*"), callback=answer)
        yield seen


def test_every_webhook_request_the_connector_sends_holds_to_the_contract(ekm_channel):
    ekm = EkmConnector(ekm_config(), MemoryStore(client_id="c", client_secret="s", refresh_token="r1"),
                       InProcessLimiter(sleep=lambda seconds: None))
    ekm.sleep = lambda seconds: None
    ekm.webhooks_subscribe(ENDPOINT)
    ekm.webhooks_unsubscribe()
    assert [order.channel_order_id for order in ekm.order_get(["123"]).orders] == ["123"]
    assert ekm.webhook_hint({}, json.dumps({"username": "teapots", "topic": "order.created",
                                            "entity_id": "123"}).encode()).order_ids == ("123",)

    assert [(operation, problems) for operation, problems in ekm_channel if problems] == []
    assert {operation for operation, _ in ekm_channel} == {
        "token", "Webhooks_GetAll", "Webhooks_Put", "Webhooks_Delete", "Webhooks_Post", "Currency_GetCurrency",
        "Orders_GetById", "Orders_GetItems"}


def test_the_sandboxs_webhook_answers_hold_to_the_contract(sandbox):
    account = make_account(sandbox, "ekm", "teapots")
    ekm_login(account)
    hooks = f"{account.url}/api/v2/Webhooks"
    posted = account.session.post(hooks, json={"topic": "order.created", "endpoint": ENDPOINT, "is_enabled": True})
    (subscription,) = account.session.get(f"{hooks}/webhooks").json()["data"]
    answers = {
        "Webhooks_Post": posted,
        "Webhooks_GetAll": account.session.get(f"{hooks}/webhooks"),
        "Webhooks_Put": account.session.put(f"{hooks}/{subscription['id']}", json={"is_enabled": False}),
        "Webhooks_Delete": account.session.delete(f"{hooks}/{subscription['id']}"),
    }
    for operation_id, answer in answers.items():
        body = answer.json() if answer.content else None
        operation = CONTRACT.operation(operation_id)
        assert answer.status_code in (200, 201), operation_id
        assert operation.response_errors(answer.status_code, body) == [], operation_id
        assert answer_undeclared(operation, answer.status_code, body) == [], operation_id
    unknown = account.session.put(f"{hooks}/{subscription['id']}", json={"is_enabled": True})
    assert unknown.status_code == 404
    assert CONTRACT.operation("Webhooks_Put").response_errors(404, None) == []


def test_the_sandboxs_delivery_is_the_contracts(sandbox):
    arrived: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrived.put(({"content-type": self.headers["Content-Type"]}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        account = make_account(sandbox, "ekm", "teapots")
        ekm_login(account)
        account.session.post(f"{account.url}/api/v2/Webhooks", json={
            "topic": "order.created", "endpoint": f"http://127.0.0.1:{server.server_address[1]}/hook"})
        (order_id,) = sandbox.orders("ekm", "teapots", [{"items": [{"sku": "MUG"}]}])
        headers, body = arrived.get(timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert CONTRACT.operation("webhook_delivery").request_errors(headers=headers, body=body) == []
    assert body == {"username": "teapots", "topic": "order.created", "entity_id": order_id}

import time
import xml.etree.ElementTree as ET

import pytest
import requests

from sandbox.control import SandboxControl, SandboxControlError
from sandbox.testing import running_sandbox
from tests.sandbox.conftest import amazon_login, make_account

UK = "A1F83G8C2ARO7P"
PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"


def get_orders(amazon, **params):
    return amazon.session.get(amazon.url + "/orders/2026-01-01/orders", params={
        "marketplaceIds": UK, "lastUpdatedAfter": "2000-01-01T00:00:00Z", "includedData": "FULFILLMENT", **params},
        timeout=5)


def test_429_fault_sends_retry_after_then_clears(sandbox, amazon):
    sandbox.faults("amazon", "uk", [{"path": "marketplaceParticipations", "type": "429", "times": 2,
                                     "retry_after": 3}])
    first, second, third = (amazon.session.get(amazon.url + PARTICIPATIONS) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "3"
    assert first.json()["errors"][0]["code"] == "QuotaExceeded"


@pytest.mark.parametrize("status", ["500", "503"])
def test_server_error_faults(sandbox, amazon, status):
    sandbox.faults("amazon", "uk", [{"path": "^/sellers/", "type": status}])
    failed = amazon.session.get(amazon.url + PARTICIPATIONS)
    assert failed.status_code == int(status) and failed.json()["errors"]
    assert amazon.session.get(amazon.url + PARTICIPATIONS).status_code == 200


def test_faults_match_method_and_let_the_first_requests_through(sandbox, amazon):
    sandbox.faults("amazon", "uk", [{"path": "orders", "method": "GET", "type": "500", "after": 1}])
    assert get_orders(amazon).status_code == 200
    assert get_orders(amazon).status_code == 500
    assert get_orders(amazon).status_code == 200


def test_clear_faults(sandbox, amazon):
    sandbox.faults("amazon", "uk", [{"type": "503", "times": 5}])
    assert amazon.session.get(amazon.url + PARTICIPATIONS).status_code == 503
    sandbox.clear_faults("amazon", "uk")
    assert amazon.session.get(amazon.url + PARTICIPATIONS).status_code == 200


def test_slow_fault_delays_the_answer(sandbox, amazon):
    sandbox.faults("amazon", "uk", [{"path": "marketplaceParticipations", "type": "slow", "delay": 0.4}])
    started = time.monotonic()
    assert amazon.session.get(amazon.url + PARTICIPATIONS).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_timeout_fault_outlasts_the_client_and_is_not_processed(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 1}])
    sandbox.faults("amazon", "uk", [{"path": "/listings/", "type": "timeout", "delay": 1.5}])
    body = {"productType": "PRODUCT", "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability",
                                                   "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}]}]}
    url = f"{amazon.url}/listings/2021-08-01/items/{amazon.seller_id}/A"
    with pytest.raises(requests.exceptions.ReadTimeout):
        amazon.session.patch(url, params={"marketplaceIds": UK}, json=body, timeout=0.3)
    assert sandbox.received("amazon", "uk")["stock"] == {}
    assert amazon.session.patch(url, params={"marketplaceIds": UK}, json=body, timeout=5).json()["status"] == "ACCEPTED"


def test_expire_token_fault_forces_a_refresh(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 1}])
    sandbox.orders("amazon", "uk", generate=3, skus=["A"])
    sandbox.faults("amazon", "uk", [{"path": "paginationToken=", "type": "expire_token"}])
    first = get_orders(amazon, maxResultsPerPage=2)
    assert first.status_code == 200
    token = first.json()["pagination"]["nextToken"]
    assert get_orders(amazon, paginationToken=token).status_code == 403
    amazon_login(amazon)
    assert len(get_orders(amazon, paginationToken=token).json()["orders"]) == 1


def test_short_token_lifetime_expires_tokens(sandbox):
    account = make_account(sandbox, "amazon", "uk", token_lifetime=1)
    amazon_login(account)
    assert account.session.get(account.url + PARTICIPATIONS).status_code == 200
    time.sleep(1.1)
    assert account.session.get(account.url + PARTICIPATIONS).status_code == 403


def test_malformed_fault_spoils_one_record_of_a_list(sandbox, amazon):
    sandbox.listings("amazon", "uk", [{"sku": "A", "quantity": 1}])
    sandbox.orders("amazon", "uk", [{"items": [{"sku": "A", "quantity": 1}]} for _ in range(3)])
    sandbox.faults("amazon", "uk", [{"path": "orders", "type": "malformed", "index": 1}])
    quantities = [[order["orderItems"][0]["quantityOrdered"] for order in get_orders(amazon).json()["orders"]]
                  for _ in range(2)]
    assert quantities == [[1, "one", 1], [1, 1, 1]]
    sandbox.faults("amazon", "uk", [{"path": "orders", "type": "malformed", "corrupt": "id"}])
    assert "orderId" not in get_orders(amazon).json()["orders"][0]


def test_malformed_rakuten_sale_and_ekm_order(sandbox):
    rakuten = make_account(sandbox, "rakuten", "fr")
    sandbox.listings("rakuten", "fr", [{"sku": "A", "quantity": 1}])
    sandbox.orders("rakuten", "fr", generate=2, skus=["A"])
    sandbox.faults("rakuten", "fr", [{"path": "getcurrentsales", "type": "malformed", "corrupt": "id"}])
    params = {"action": "getcurrentsales", "login": rakuten.credentials["login"],
              "pwd": rakuten.credentials["token"], "version": "2017-08-07"}
    root = ET.fromstring(requests.get(f"{rakuten.url}/sales_ws", params=params, timeout=5).content)
    assert [sale.findtext("purchaseid") or "" for sale in root.iter("sale")].count("") == 1

    ekm = make_account(sandbox, "ekm", "shop")
    token = requests.post(f"{ekm.url}/connect/token", data={
        "grant_type": "refresh_token", **{key: ekm.credentials[key] for key in ("client_id", "client_secret")},
        "refresh_token": ekm.credentials["refresh_token"]}, timeout=5).json()["access_token"]
    sandbox.listings("ekm", "shop", [{"sku": "A", "quantity": 1}])
    sandbox.orders("ekm", "shop", generate=2, skus=["A"])
    sandbox.faults("ekm", "shop", [{"path": "orders/search", "type": "malformed"}])
    orders = requests.get(f"{ekm.url}/api/v2/orders/search", params={"query": "", "orderby": "last_updated"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=5).json()["data"]
    assert ["id" in order for order in orders] == [False, True]


def test_rakuten_expire_token_and_429(sandbox):
    rakuten = make_account(sandbox, "rakuten", "fr")
    params = {"action": "getnewsales", "login": rakuten.credentials["login"], "pwd": rakuten.credentials["token"],
              "version": "2017-08-07"}
    sandbox.faults("rakuten", "fr", [{"type": "expire_token"}, {"type": "429", "retry_after": 2}])
    expired = requests.get(f"{rakuten.url}/sales_ws", params=params, timeout=5)
    # Rakuten refuses a token with an errorresponse root (channels/connectors/rakuten/contract).
    assert expired.status_code == 200 and ET.fromstring(expired.content).findtext("error/code") == (
        "InvalidUserConnection")
    sandbox.clear_faults("rakuten", "fr")
    sandbox.faults("rakuten", "fr", [{"type": "429", "retry_after": 2}])
    throttled = requests.get(f"{rakuten.url}/sales_ws", params=params, timeout=5)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert ET.fromstring(requests.get(f"{rakuten.url}/sales_ws", params=params, timeout=5).content).tag == (
        "getnewsalesresult")


def test_received_counts_calls_per_operation(sandbox, amazon):
    for _ in range(3):
        amazon.session.get(amazon.url + PARTICIPATIONS)
    get_orders(amazon)
    calls = sandbox.received("amazon", "uk")["calls"]
    assert calls["getMarketplaceParticipations"] == 3 and calls["searchOrders"] == 1 and calls["token"] == 1


def test_control_api_rejects_what_it_cannot_do(sandbox):
    with pytest.raises(SandboxControlError, match="404"):
        sandbox.listings("amazon", "nobody", [{"sku": "A"}])
    with pytest.raises(SandboxControlError, match="credentials"):
        sandbox.account("ekm", "shop", credentials={"client_id": "x"})
    make_account(sandbox, "ekm", "shop")
    with pytest.raises(SandboxControlError, match="variant_of"):
        sandbox.listings("ekm", "shop", [{"sku": "V", "variant_of": "NOPARENT"}])
    with pytest.raises(SandboxControlError, match="fault type"):
        sandbox.faults("ekm", "shop", [{"type": "gremlins"}])
    assert requests.get(f"{sandbox.base_url}/amazon/nobody{PARTICIPATIONS}", timeout=5).status_code == 404


def test_reset_forgets_every_account(sandbox, amazon):
    assert sandbox.account_exists("amazon", "uk")
    sandbox.reset()
    assert not sandbox.account_exists("amazon", "uk")
    assert amazon.session.get(amazon.url + PARTICIPATIONS).status_code == 404


def test_state_lives_in_its_own_file_and_survives_a_restart(tmp_path):
    db_path = tmp_path / "sandbox.sqlite3"
    with running_sandbox(db_path) as base_url:
        control = SandboxControl(base_url)
        account = make_account(control, "amazon", "uk")
        control.listings("amazon", "uk", [{"sku": "A", "quantity": 4}])
        order_ids = control.orders("amazon", "uk", generate=2, skus=["A"])
        token = amazon_login(account)
    assert db_path.stat().st_size > 0
    with running_sandbox(db_path) as base_url:
        control = SandboxControl(base_url)
        assert [listing["sku"] for listing in control.listings("amazon", "uk")] == ["A"]
        assert [order["order_id"] for order in control.orders("amazon", "uk")] == order_ids
        url = control.channel_url("amazon", "uk")
        assert requests.get(url + PARTICIPATIONS, headers={"x-amz-access-token": token}, timeout=5).status_code == 200

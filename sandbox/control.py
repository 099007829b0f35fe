"""A small client of the sandbox control API (sandbox/README.md), for the demo loader, tests and benchmarks."""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT = 10


def channel_base_url(base_url: str, kind: str, account: str) -> str:
    """A channel account's `api_base_url` and `auth_base_url` in the sandbox (both the same prefix)."""
    return f"{base_url.rstrip('/')}/{kind}/{account}"


# The stock import profile every Rakuten account has unless `import_profiles` says otherwise: the id a hub
# channel's import_profile_id names, and its columns (sandbox/README.md).
RAKUTEN_IMPORT_PROFILE_ID = "100001"
RAKUTEN_IMPORT_COLUMNS = ("sku", "price", "quantity")


def default_credentials(kind: str, account: str) -> dict[str, str]:
    """Credentials good enough for the demo: what the hub's channel row must then hold."""
    if kind == "rakuten":
        return {"login": f"{account}-login", "token": f"{account}-token"}
    if kind == "woocommerce":
        return {"consumer_key": f"ck_{account.replace('-', '')}key", "consumer_secret": f"cs_{account}-secret"}
    if kind == "shopify":
        return {"client_id": f"shopify-{account}-client", "client_secret": f"shopify-{account}-secret"}
    return {"client_id": f"{kind}-{account}-client", "client_secret": f"{kind}-{account}-secret",
            "refresh_token": f"{kind}-{account}-refresh-0"}


class SandboxControlError(RuntimeError):
    pass


class SandboxControl:
    def __init__(self, base_url: str, session: requests.Session | None = None, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout

    def channel_url(self, kind: str, account: str) -> str:
        return channel_base_url(self.base_url, kind, account)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.base_url}/_control{path}", json=body, timeout=self.timeout)
        if response.status_code >= 400:
            raise SandboxControlError(f"{method} /_control{path}: {response.status_code} {response.text}")
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/reset")

    def account(self, kind: str, account: str, *, credentials: dict[str, str] | None = None, seller_id: str = "",
                marketplace_id: str = "", **settings: Any) -> dict[str, Any]:
        """Create or replace an account. `settings`: rate_limits, token_lifetime, order_statuses, ... (README)."""
        body = {"credentials": credentials or default_credentials(kind, account), "seller_id": seller_id,
                "marketplace_id": marketplace_id, **settings}
        return self._call("PUT", f"/{kind}/{account}", body)

    def account_exists(self, kind: str, account: str) -> bool:
        response = self.session.get(f"{self.base_url}/_control/{kind}/{account}", timeout=self.timeout)
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise SandboxControlError(f"GET /_control/{kind}/{account}: {response.status_code} {response.text}")
        return True

    def rate_limits(self, kind: str, account: str, limits: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/{kind}/{account}/rate_limits", limits)

    def listings(self, kind: str, account: str, items: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Create or update listings when `items` is given; the account's current listings otherwise."""
        if items is None:
            return self._call("GET", f"/{kind}/{account}/listings")
        return self._call("POST", f"/{kind}/{account}/listings", items)

    def orders(self, kind: str, account: str, orders: list[dict[str, Any]] | None = None, *,
               generate: int | None = None, skus: list[str] | None = None) -> Any:
        """Inject `orders`, or `generate` N orders over `skus`, returning their ids; else the current orders."""
        if generate is not None:
            return self._call("POST", f"/{kind}/{account}/orders", {"generate": generate, "skus": skus or []})[
                "order_ids"]
        if orders is None:
            return self._call("GET", f"/{kind}/{account}/orders")
        return self._call("POST", f"/{kind}/{account}/orders", orders)["order_ids"]

    def order_status(self, kind: str, account: str, order_id: str, status: str) -> None:
        self._call("POST", f"/{kind}/{account}/orders/{order_id}/status", {"status": status})

    def faults(self, kind: str, account: str, faults: list[dict[str, Any]]) -> None:
        self._call("POST", f"/{kind}/{account}/faults", faults)

    def clear_faults(self, kind: str, account: str) -> None:
        self._call("DELETE", f"/{kind}/{account}/faults")

    def received(self, kind: str, account: str) -> dict[str, Any]:
        return self._call("GET", f"/{kind}/{account}/received")

    def fba_inventory(self, account: str, items: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Set FBA stock (`[{"sku", "fulfillable"}]`) of an Amazon account when given; its FBA stock otherwise."""
        if items is None:
            return self._call("GET", f"/amazon/{account}/fba_inventory")
        return self._call("POST", f"/amazon/{account}/fba_inventory", items)

    def account_deletion_notice(self, account: str, username: str) -> dict[str, Any]:
        """The signed notice eBay would send when `username` closes their account: {headers, body}."""
        return self._call("POST", f"/ebay/{account}/account_deletion", {"username": username})

    def fulfillment_order_ship(self, account: str, fulfillment_order_id: str, *, tracking_number: str = "",
                               carrier: str = "") -> dict[str, Any]:
        """Amazon ships a fulfilment order now (COMPLETE with a package), rather than after its polls."""
        return self._call("POST", f"/amazon/{account}/fulfillment_orders/{fulfillment_order_id}/ship",
                          {"tracking_number": tracking_number, "carrier": carrier})

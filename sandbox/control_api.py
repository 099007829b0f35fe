"""The control API under /_control/: how tests, the demo loader and benchmarks set the scene."""

from __future__ import annotations

from typing import Any

from sandbox.context import SandboxContext
from sandbox.ebay import account_deletion_notice
from sandbox.ekm import order_webhooks_send
from sandbox.shopify import order_webhooks_send as shopify_webhooks_send
from sandbox.shopify import status_topics
from sandbox.state.accounts import account_get, account_put, account_settings_update
from sandbox.state.common import KINDS, Account, ControlError
from sandbox.state.faults import faults_add, faults_list
from sandbox.state.fulfilment import (
    fba_inventory,
    fba_inventory_set,
    fulfillment_order_advance,
    fulfillment_order_get,
    fulfillment_orders_all,
)
from sandbox.state.listings import listings_all, listings_upsert
from sandbox.state.orders import order_get, order_status_set, orders_all, orders_generate, orders_insert
from sandbox.state.received import received
from sandbox.web import Request, Response, Router
from sandbox.woocommerce import order_webhooks_send as woocommerce_webhooks_send


def problem(message: str, status: int = 400) -> Response:
    return Response.json({"error": message}, status)


class ControlApi:
    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self.router = Router()
        add = self.router.add
        add("POST", "/reset", "reset", self.reset)
        add("PUT", "/{kind}/{account}", "account", self.put_account)
        add("GET", "/{kind}/{account}", "account", self.get_account)
        add("PUT", "/{kind}/{account}/rate_limits", "rate_limits", self.put_rate_limits)
        add("POST", "/{kind}/{account}/listings", "listings", self.post_listings)
        add("GET", "/{kind}/{account}/listings", "listings", self.get_listings)
        add("POST", "/{kind}/{account}/orders", "orders", self.post_orders)
        add("GET", "/{kind}/{account}/orders", "orders", self.get_orders)
        add("POST", "/{kind}/{account}/orders/{order_id}/status", "order_status", self.post_order_status)
        add("POST", "/{kind}/{account}/faults", "faults", self.post_faults)
        add("GET", "/{kind}/{account}/faults", "faults", self.get_faults)
        add("DELETE", "/{kind}/{account}/faults", "faults", self.delete_faults)
        add("GET", "/{kind}/{account}/received", "received", self.get_received)
        add("POST", "/amazon/{account}/fba_inventory", "fba_inventory", self.post_fba_inventory)
        add("GET", "/amazon/{account}/fba_inventory", "fba_inventory", self.get_fba_inventory)
        add("POST", "/amazon/{account}/fulfillment_orders/{order_id}/ship", "fulfillment_ship",
            self.post_fulfillment_ship)
        add("POST", "/ebay/{account}/account_deletion", "account_deletion", self.post_account_deletion)

    def handle(self, request: Request, path: str) -> Response:
        route, params = self.router.match(request.method, path)
        if route is None:
            return problem(f"no control endpoint {request.method} /_control{path}", 404)
        if "kind" in params and params["kind"] not in KINDS:
            return problem(f"kind must be one of {', '.join(KINDS)}", 404)
        try:
            return route.handler(request, **params)
        except ControlError as error:
            return problem(str(error), error.status)
        except (TypeError, ValueError, KeyError) as error:
            return problem(f"bad request body: {error!r}")

    def account(self, db, kind: str, name: str) -> Account:
        account = account_get(db, kind, name)
        if account is None:
            raise ControlError(f"no {kind} account {name!r}: PUT /_control/{kind}/{name} first", 404)
        return account

    def body(self, request: Request) -> Any:
        body = request.json()
        if body is None:
            raise ControlError("the body must be JSON")
        return body

    def describe(self, request: Request, account: Account) -> dict[str, Any]:
        base = f"http://{request.host}/{account.kind}/{account.name}"
        return {"kind": account.kind, "account": account.name, "seller_id": account.seller_id,
                "marketplace_id": account.marketplace_id, "api_base_url": base,
                "auth_base_url": base if account.kind != "rakuten" else "", "settings": account.settings}

    def reset(self, request: Request) -> Response:
        with self.context.store.write() as db:
            db.execute("DELETE FROM account")
        self.context.limiter.forget()
        self.context.render_cache.clear()
        return Response.json({"reset": True})

    def put_account(self, request: Request, kind: str, account: str) -> Response:
        body = self.body(request)
        if not isinstance(body, dict):
            raise ControlError("the body must be an object")
        with self.context.store.write() as db:
            created = account_put(db, kind, account, body)
        self.context.limiter.forget(created.id)
        self.context.render_cache.clear()
        return Response.json(self.describe(request, created))

    def get_account(self, request: Request, kind: str, account: str) -> Response:
        with self.context.store.read() as db:
            found = self.account(db, kind, account)
        return Response.json(self.describe(request, found))

    def put_rate_limits(self, request: Request, kind: str, account: str) -> Response:
        limits = self.body(request)
        if not isinstance(limits, dict):
            raise ControlError("rate_limits must be an object")
        with self.context.store.write() as db:
            updated = account_settings_update(db, self.account(db, kind, account), {"rate_limits": limits})
        self.context.limiter.forget(updated.id)
        return Response.json(self.describe(request, updated))

    def post_listings(self, request: Request, kind: str, account: str) -> Response:
        items = self.body(request)
        with self.context.store.write() as db:
            return Response.json(listings_upsert(db, self.account(db, kind, account), items))

    def get_listings(self, request: Request, kind: str, account: str) -> Response:
        with self.context.store.read() as db:
            return Response.json(listings_all(db, self.account(db, kind, account)))

    def post_orders(self, request: Request, kind: str, account: str) -> Response:
        body = self.body(request)
        with self.context.store.write() as db:
            found = self.account(db, kind, account)
            if isinstance(body, dict) and "generate" in body:
                ids = orders_generate(db, found, int(body["generate"]), list(body.get("skus") or []),
                                            body.get("status"))
            else:
                ids = orders_insert(db, found, body)
        self.orders_announce(found, "order.created", ids, request, shopify_topics=["orders/create"])
        return Response.json({"order_ids": ids})

    def orders_announce(self, account: Account, topic: str, order_ids: list[str], request: Request, *,
                        shopify_topics: list[str] | None = None) -> None:
        """The channel's webhooks for orders just committed (EKM's, Shopify's and WooCommerce's; the others send
        none)."""
        if account.kind == "ekm":
            order_webhooks_send(self.context.store, account, topic, order_ids)
        elif account.kind == "shopify":
            shopify_webhooks_send(self.context.store, account, shopify_topics or ["orders/updated"], order_ids)
        elif account.kind == "woocommerce":
            woocommerce_webhooks_send(self.context.store, account, topic, order_ids,
                                      f"http://{request.host}/woocommerce/{account.name}")

    def get_orders(self, request: Request, kind: str, account: str) -> Response:
        with self.context.store.read() as db:
            return Response.json(orders_all(db, self.account(db, kind, account)))

    def post_order_status(self, request: Request, kind: str, account: str, order_id: str) -> Response:
        body = self.body(request)
        if not isinstance(body, dict) or not body.get("status"):
            raise ControlError('the body must be {"status": ...}')
        with self.context.store.write() as db:
            found = self.account(db, kind, account)
            order = order_get(db, found, order_id)
            if order is None:
                raise ControlError(f"no order {order_id}", 404)
            order_status_set(db, order, body["status"])
            paid_now = bool(body.get("paid")) and not order["paid"]
            if "paid" in body:
                db.execute("UPDATE channel_order SET paid = ?, revision = revision + 1 WHERE id = ?",
                           (int(bool(body["paid"])), order["id"]))
        self.orders_announce(found, "order.updated", [order_id], request,
                             shopify_topics=status_topics(body["status"], paid_now))
        return Response.json({"order_id": order_id, "status": body["status"]})

    def post_faults(self, request: Request, kind: str, account: str) -> Response:
        faults = self.body(request)
        with self.context.store.write() as db:
            count = faults_add(db, self.account(db, kind, account), faults)
        return Response.json({"armed": count})

    def get_faults(self, request: Request, kind: str, account: str) -> Response:
        with self.context.store.read() as db:
            return Response.json(faults_list(db, self.account(db, kind, account)))

    def delete_faults(self, request: Request, kind: str, account: str) -> Response:
        with self.context.store.write() as db:
            db.execute("DELETE FROM fault WHERE account_id = ?", (self.account(db, kind, account).id,))
        return Response.json({"cleared": True})

    def get_received(self, request: Request, kind: str, account: str) -> Response:
        with self.context.store.read() as db:
            return Response.json(received(db, self.account(db, kind, account)))

    def post_fba_inventory(self, request: Request, account: str) -> Response:
        items = self.body(request)
        with self.context.store.write() as db:
            return Response.json(fba_inventory_set(db, self.account(db, "amazon", account), items))

    def get_fba_inventory(self, request: Request, account: str) -> Response:
        with self.context.store.read() as db:
            return Response.json(fba_inventory(db, self.account(db, "amazon", account)))

    def post_account_deletion(self, request: Request, account: str) -> Response:
        """A signed marketplace account deletion notice for `username`, for the test to deliver to the hub."""
        body = request.json() or {}
        if not isinstance(body, dict) or not body.get("username"):
            raise ControlError('the body must be {"username": ...}')
        with self.context.store.read() as db:
            self.account(db, "ebay", account)
        return Response.json(account_deletion_notice(str(body["username"]), str(body.get("user_id") or "")))

    def post_fulfillment_ship(self, request: Request, account: str, order_id: str) -> Response:
        body = request.json() or {}
        if not isinstance(body, dict):
            raise ControlError('the body must be {"tracking_number"?, "carrier"?}')
        with self.context.store.write() as db:
            found = self.account(db, "amazon", account)
            order = fulfillment_order_get(db, found, order_id)
            if order is None:
                raise ControlError(f"no fulfillment order {order_id}", 404)
            fulfillment_order_advance(db, order, tracking_number=str(body.get("tracking_number") or ""),
                                            carrier=str(body.get("carrier") or ""), to_the_end=True)
            shipped = next(o for o in fulfillment_orders_all(db, found) if o["fulfillment_order_id"] == order_id)
        return Response.json(shipped)

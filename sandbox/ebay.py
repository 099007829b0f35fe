"""eBay Sell Inventory v1 and Sell Fulfillment v1, and eBay's OAuth token endpoint and consent page, as
channels/connectors/ebay/contract/*.json describes them (written from eBay's OpenAPI files and OAuth pages).

Route operation names are the contract's operation ids, so every request is checked against it before its handler
runs; a refused one gets eBay's {errors: [...]} (errorId 25709 on the Inventory API, 32600 on Fulfillment).
bulkUpdatePriceQuantity answers each SKU on its own: 207 when some failed. A listing takes at most
`revisions_per_day` revisions (eBay's 250) in one Pacific calendar day; past that its SKU is refused.
Listings in the account's `trading_listings` setting were made with the Trading API: orders come from them, but
the Inventory API does not know them.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.api import Call, ChannelApi, render_rows
from sandbox.ratelimit import Limit
from sandbox.state.accounts import (
    access_token_issue,
    access_token_state,
    authorization_code_use,
    grant_create,
    refresh_token_issue,
)
from sandbox.state.common import Account, included_tax
from sandbox.state.listings import ebay_listing_id, listing_by_sku, stock_record
from sandbox.state.listings import ebay_offer_id as offer_id
from sandbox.state.orders import order_get, order_items, order_status_set, order_totals
from sandbox.state.received import event_record
from sandbox.store import parse_time
from sandbox.web import HttpError, Response

DAY = 24 * 3600
REVISIONS_PER_DAY = 250
EBAY_DAY = ZoneInfo("America/Los_Angeles")
REFRESH_TOKEN_LIFETIME = 47_304_000
# Every listing row without a parent is an inventory item (the sandbox's variants are EKM's).
INVENTORY_ITEMS = "account_id = ? AND parent_id IS NULL"
DOMAINS = {"inventory": "API_INVENTORY", "fulfillment": "API_FULFILLMENT"}
INVALID_INPUT = {"inventory": 25709, "fulfillment": 32600}
FULFILLED = "FULFILLED"
# The key this sandbox signs its notifications with, made when it starts, and the id getPublicKey knows it by.
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
SIGNING_KEY_ID = "sandbox-" + uuid.uuid4().hex


def amount(value: Decimal | str, currency: str = "GBP") -> dict[str, str]:
    return {"currency": currency, "value": f"{Decimal(value):.2f}"}


def stamp(value: str) -> str:
    """A stored time (2026-12-02T10:00:00Z) as eBay writes it, with milliseconds."""
    return value.replace("Z", ".000Z") if "." not in value else value


class EbayApi(ChannelApi):
    kind = "ebay"
    # Default daily call limits as token buckets of a day's calls, refilled over the day (unconfirmed figures,
    # contract notes); the `sandbox` profile raises the refill to 1 call a second.
    published_limits = {"inventory": Limit(2_000_000 / DAY, 2_000_000), "fulfillment": Limit(100_000 / DAY, 100_000)}

    def routes(self) -> None:
        add = self.router.add
        add("POST", "/identity/v1/oauth2/token", "token", self.token, authenticated=False, limited=False)
        add("GET", "/oauth2/authorize", "authorize", self.authorize, authenticated=False, limited=False)
        add("GET", "/commerce/notification/v1/public_key/{key_id}", "getPublicKey", self.public_key,
            authenticated=False)
        add("GET", "/sell/inventory/v1/inventory_item", "getInventoryItems", self.inventory_items)
        add("GET", "/sell/inventory/v1/offer", "getOffers", self.offers)
        add("POST", "/sell/inventory/v1/bulk_update_price_quantity", "bulkUpdatePriceQuantity", self.bulk_update)
        add("GET", "/sell/fulfillment/v1/order", "getOrders", self.orders)
        add("POST", "/sell/fulfillment/v1/order/{order_id}/shipping_fulfillment", "createShippingFulfillment",
            self.ship)

    # eBay's error shapes

    def family(self, operation: str) -> str:
        found = self.contract.operations.get(operation)
        return found.family if found is not None else "inventory"

    def error(self, status: int, code: str, message: str, *, family: str = "inventory", error_id: int = 0
              ) -> Response:
        if status == 401:
            error_id, domain, message = 1001, "OAuth", "Invalid access token"
            long = "Invalid access token. Check the value of the Authorization HTTP request header."
        elif status == 429:
            error_id, domain, long = 2001, "ACCESS", "The request limit has been reached for the resource."
            message = "Too many requests."
        else:
            domain, long = DOMAINS.get(family, "API_INVENTORY"), message
            error_id = error_id or (25001 if status >= 500 else INVALID_INPUT.get(family, 25709))
        category = "APPLICATION" if status >= 500 else "REQUEST"
        return Response.json({"errors": [{"errorId": error_id, "domain": domain, "category": category,
                                          "message": message, "longMessage": long}]}, status)

    def refuse_invalid(self, call: Call, problems: list[str]) -> Response:
        if call.operation in ("token", "authorize"):
            return Response.json({"error": "invalid_request", "error_description": "; ".join(problems)}, 400)
        return self.error(400, "", f"Invalid value for request. {'; '.join(problems)}",
                          family=self.family(call.operation))

    def bucket_key(self, operation: str) -> str:
        return self.family(operation)

    def authenticate(self, call: Call) -> None:
        header = call.request.header("Authorization")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with call.read() as db:
            state = access_token_state(db, call.account, token)
        if state != "valid":
            raise self.fail(401, "", "")

    # OAuth (identity.json)

    def token(self, call: Call) -> Response:
        account = call.account
        header = call.request.header("Authorization")
        expected = f"{account.credentials['client_id']}:{account.credentials['client_secret']}"
        try:
            given = base64.b64decode(header[6:].strip()).decode() if header.startswith("Basic ") else ""
        except ValueError:
            given = ""
        if given != expected:
            return Response.json({"error": "invalid_client", "error_description": "client authentication failed"},
                                 401)
        form = call.request.form()
        grant_type = form.get("grant_type")
        with call.write() as db:
            if grant_type == "client_credentials":
                access = access_token_issue(db, account, None, "v^1.1#i^1#f^0#p^1#app#")
                return Response.json({"access_token": access, "expires_in": account.token_lifetime,
                                      "token_type": "Application Access Token"})
            if grant_type == "refresh_token":
                row = db.execute(
                    "SELECT r.grant_id, g.revoked FROM refresh_token r JOIN oauth_grant g ON g.id = r.grant_id "
                    "WHERE r.token = ? AND r.account_id = ?", (form.get("refresh_token", ""), account.id)).fetchone()
                if row is None or row["revoked"]:
                    return Response.json({"error": "invalid_grant", "error_description": (
                        "the provided authorization refresh token is invalid or was issued to another client")}, 400)
                access = access_token_issue(db, account, row["grant_id"], "v^1.1#i^1#p^3#")
                return Response.json({"access_token": access, "expires_in": account.token_lifetime,
                                      "token_type": "User Access Token"})
            if grant_type == "authorization_code":
                ru_name = account.credentials.get("ru_name")
                if ru_name and form.get("redirect_uri") != ru_name:
                    return Response.json({"error": "invalid_request",
                                          "error_description": "redirect_uri is not the application's RuName"}, 400)
                if not authorization_code_use(db, account, form.get("code", "")):
                    return Response.json({"error": "invalid_grant", "error_description": (
                        "the provided authorization grant code is invalid or was issued to another client")}, 400)
                grant_id = grant_create(db, account)
                refresh = refresh_token_issue(db, account, grant_id, "v^1.1#i^1#r^1#")
                access = access_token_issue(db, account, grant_id, "v^1.1#i^1#p^3#")
                return Response.json({"access_token": access, "expires_in": account.token_lifetime,
                                      "token_type": "User Access Token", "refresh_token": refresh,
                                      "refresh_token_expires_in": REFRESH_TOKEN_LIFETIME})
        return Response.json({"error": "unsupported_grant_type"}, 400)

    def authorize(self, call: Call) -> Response:
        """The consent page, the seller agreeing at once: on to the RuName's accept URL (the account's
        `accept_url` credential, else redirect_uri itself when it is a URL) with a one-use code."""
        arg = call.request.arg
        credentials = call.account.credentials
        if arg("client_id") != credentials["client_id"]:
            return Response.json({"error": "invalid_client", "error_description": "Unknown client"}, 400)
        ru_name = credentials.get("ru_name")
        if ru_name and arg("redirect_uri") != ru_name:
            return Response.json({"error": "invalid_request", "error_description": "Invalid redirect_uri"}, 400)
        accept = credentials.get("accept_url") or arg("redirect_uri") or ""
        code = "v^1.1#i^1#f^0#I^3#" + secrets.token_urlsafe(18)
        back = accept + ("&" if "?" in accept else "?") + urlencode(
            {"state": arg("state") or "", "code": code, "expires_in": 299})
        return Response(302, b"", [("Location", back)])

    # Notifications (notification.json): application tokens only

    def public_key(self, call: Call, key_id: str) -> Response:
        header = call.request.header("Authorization")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with call.read() as db:
            valid = access_token_state(db, call.account, token) == "valid"
        if not valid or "#app#" not in token:
            raise self.fail(401, "", "")
        if key_id != SIGNING_KEY_ID:
            raise HttpError(self.error(404, "", f"No public key {key_id}.", error_id=195001))
        key = SIGNING_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        # As eBay sends it: on one line.
        return Response.json({"algorithm": "ECDSA", "digest": "SHA1", "key": key.replace("\n", "")})

    # Inventory (inventory.json)

    def page_args(self, call: Call, default_limit: int) -> tuple[int, int]:
        return int(call.request.arg("limit") or default_limit), int(call.request.arg("offset") or 0)

    def inventory_items(self, call: Call) -> Response:
        limit, page = self.page_args(call, 25)
        with call.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM listing WHERE {INVENTORY_ITEMS}",
                               (call.account.id,)).fetchone()[0]
            rows = db.execute(f"SELECT * FROM listing WHERE {INVENTORY_ITEMS} ORDER BY id LIMIT ? OFFSET ?",
                              (call.account.id, limit, page * limit)).fetchall()
        items = [{"sku": row["sku"], "locale": "en_GB", "condition": "NEW", "product": {"title": row["title"]},
                  "availability": {"shipToLocationAvailability": {"quantity": row["quantity"]}}} for row in rows]
        spoiled = call.take_malformed(items)
        if spoiled is not None:
            del items[spoiled["index"]]["sku"]
        base = f"{call.base_url}/sell/inventory/v1/inventory_item?limit={limit}"
        body: dict[str, Any] = {"href": f"{base}&offset={page}", "limit": limit, "size": len(items),
                                "total": total, "inventoryItems": items}
        if (page + 1) * limit < total:
            body["next"] = f"{base}&offset={page + 1}"
        if page:
            body["prev"] = f"{base}&offset={page - 1}"
        return Response.json(body)

    def render_offer(self, account: Account, row) -> dict[str, Any]:
        return {"offerId": offer_id(row["id"]), "sku": row["sku"], "marketplaceId": account.marketplace_id or "EBAY_GB",
                "format": "FIXED_PRICE", "availableQuantity": row["quantity"],
                "pricingSummary": {"price": amount(row["price"])},
                "listing": {"listingId": ebay_listing_id(row["id"]),
                            "listingStatus": "ACTIVE" if row["live"] else "ENDED", "soldQuantity": 0},
                "status": "PUBLISHED" if row["live"] else "UNPUBLISHED"}

    def offers(self, call: Call) -> Response:
        sku = call.request.arg("sku") or ""
        with call.read() as db:
            row = listing_by_sku(db, call.account, sku)
        if row is None or row["parent_id"]:
            raise HttpError(self.error(404, "", "This Offer is not available.", error_id=25713))
        offer = self.render_offer(call.account, row)
        return Response.json({"href": f"{call.base_url}/sell/inventory/v1/offer?sku={sku}", "limit": 25, "size": 1,
                              "total": 1, "offers": [offer]})

    def revisions_allowed(self, account: Account) -> int:
        return int(account.settings.get("revisions_per_day", REVISIONS_PER_DAY))

    def bulk_update(self, call: Call) -> Response:
        requests = call.request.json()["requests"]
        day = datetime.now(EBAY_DAY).date().isoformat()
        responses, failed = [], False
        with call.write() as db:
            for request in requests:
                sku = request.get("sku", "")
                listing = listing_by_sku(db, call.account, sku) if sku else None
                offers = request.get("offers") or [{}]
                problem = self.revision_problem(db, call.account, listing, request, day)
                for offer in offers:
                    entry: dict[str, Any] = {"sku": sku, "statusCode": 200}
                    if offer.get("offerId"):
                        entry["offerId"] = offer["offerId"]
                    if problem:
                        entry |= {"statusCode": 400, "errors": [problem]}
                        failed = True
                    responses.append(entry)
                if problem:
                    continue
                quantity = (request.get("shipToLocationAvailability") or {}).get("quantity")
                offer = offers[0]
                quantity = offer.get("availableQuantity", quantity)
                price = Decimal(offer["price"]["value"]) if offer.get("price") else None
                stock_record(db, call.account, listing, quantity=quantity, price=price)
                db.execute("INSERT INTO listing_revision (account_id, sku, day, revisions) VALUES (?, ?, ?, 1) "
                           "ON CONFLICT (account_id, sku, day) DO UPDATE SET revisions = revisions + 1",
                           (call.account.id, sku, day))
        return Response.json({"responses": responses}, 207 if failed else 200)

    def revision_problem(self, db, account: Account, listing, request: dict[str, Any], day: str
                         ) -> dict[str, Any] | None:
        """Why eBay refuses one SKU's request (an eBay Error), or None."""
        sku = request.get("sku", "")
        if listing is None or listing["parent_id"]:
            return {"errorId": 25702, "domain": "API_INVENTORY", "category": "REQUEST",
                    "message": f"SKU {sku} is not available in the system",
                    "parameters": [{"name": "sku", "value": sku}]}
        for offer in request.get("offers") or []:
            if offer["offerId"] != offer_id(listing["id"]):
                return {"errorId": 25713, "domain": "API_INVENTORY", "category": "REQUEST",
                        "message": "This Offer is not available.",
                        "parameters": [{"name": "offerId", "value": offer["offerId"]}]}
            if not listing["live"]:
                return {"errorId": 25725, "domain": "API_INVENTORY", "category": "REQUEST",
                        "message": "The offer is not published: use updateOffer for an unpublished offer."}
        row = db.execute("SELECT revisions FROM listing_revision WHERE account_id = ? AND sku = ? AND day = ?",
                         (account.id, sku, day)).fetchone()
        if row is not None and row["revisions"] >= self.revisions_allowed(account):
            return {"errorId": 25001, "domain": "API_INVENTORY", "category": "REQUEST",
                    "message": "The listing has reached its revision limit for today.",
                    "longMessage": (f"Listing {ebay_listing_id(listing['id'])} has been revised "
                                    f"{self.revisions_allowed(account)} times today, the most eBay allows in one "
                                    "calendar day: it can be revised again tomorrow.")}
        return None

    # Fulfillment (fulfillment.json)

    def orders(self, call: Call) -> Response:
        arg = call.request.arg
        account = call.account
        where, params = "account_id = ?", [account.id]
        if arg("orderIds"):
            ids = arg("orderIds").split(",")
            where += f" AND order_id IN ({','.join('?' * len(ids))})"
            params += ids
            limit, offset = len(ids), 0
        else:
            limit, offset = int(arg("limit") or 50), int(arg("offset") or 0)
            for criterion in (arg("filter") or "").split(","):
                name, _, value = criterion.partition(":")
                if name in ("creationdate", "lastmodifieddate"):
                    start, _, end = value.strip("[]").partition("..")
                    column = "created_at" if name == "creationdate" else "updated_at"
                    try:
                        where += f" AND {column} >= ?"
                        params.append(parse_time(start))
                        if end:
                            where += f" AND {column} <= ?"
                            params.append(parse_time(end))
                    except ValueError:
                        raise HttpError(self.error(400, "", "Invalid date format", family="fulfillment",
                                                   error_id=30810)) from None
                elif name == "orderfulfillmentstatus":
                    wanted = value.strip("{}").split("|")
                    where += f" AND status IN ({','.join('?' * len(wanted))})"
                    params += wanted
        with call.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM channel_order WHERE {where}", params).fetchone()[0]
            rows = db.execute(f"SELECT * FROM channel_order WHERE {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
                              (*params, limit, offset)).fetchall()
            trading = {entry["sku"]: entry for entry in account.settings.get("trading_listings") or []}
            texts = render_rows(call, rows, "", lambda pks: order_items(db, pks),
                                lambda row, items: json.dumps(self.render_order(account, row, items, trading)))
        orders = [json.loads(text) for text in texts]
        spoiled = call.take_malformed(orders)
        if spoiled is not None:
            if spoiled["corrupt"] == "quantity":
                orders[spoiled["index"]]["lineItems"][0]["quantity"] = "two"
            else:
                del orders[spoiled["index"]]["orderId"]
        body: dict[str, Any] = {"href": f"{call.base_url}/sell/fulfillment/v1/order?offset={offset}", "limit": limit,
                                "offset": offset, "total": total, "orders": orders}
        if offset + limit < total:
            body["next"] = f"{call.base_url}/sell/fulfillment/v1/order?offset={offset + limit}"
        return Response.json(body)

    def render_order(self, account: Account, order, items, trading: dict[str, Any]) -> dict[str, Any]:
        address = json.loads(order["address"])
        totals = order_totals(order, items)
        currency = order["currency"] or "GBP"
        status = order["status"]
        cancelled = status == "CANCELED"
        fulfilment = status if status in ("NOT_STARTED", "IN_PROGRESS", FULFILLED) else "NOT_STARTED"
        line_items = []
        for item in items:
            cost = Decimal(item["price"]) * item["quantity"]
            legacy = trading.get(item["sku"], {}).get("listing_id") or ebay_listing_id(item["listing_id"] or 0)
            line_items.append({
                "lineItemId": str(10_000_000_000 + item["id"]), "legacyItemId": str(legacy), "sku": item["sku"],
                "title": item["title"], "quantity": item["quantity"], "lineItemCost": amount(cost, currency),
                "total": amount(cost, currency), "listingMarketplaceId": account.marketplace_id or "EBAY_GB",
                "lineItemFulfillmentStatus": fulfilment, "soldFormat": "FIXED_PRICE",
                "taxes": [{"amount": amount(included_tax(cost), currency), "taxType": "VAT"}],
            })
        name = f"{address['first_name']} {address['last_name']}"
        rendered: dict[str, Any] = {
            "orderId": order["order_id"], "creationDate": stamp(order["created_at"]),
            "lastModifiedDate": stamp(order["updated_at"]), "orderFulfillmentStatus": fulfilment,
            "orderPaymentStatus": "PAID" if order["paid"] else "PENDING", "sellerId": account.seller_id,
            "buyer": {"username": address["first_name"].lower() + "_buyer"},
            "cancelStatus": {"cancelState": "CANCELED" if cancelled else "NONE_REQUESTED", "cancelRequests": []},
            "pricingSummary": {"priceSubtotal": amount(totals["subtotal"], currency),
                               "deliveryCost": amount(totals["shipping"], currency),
                               "tax": amount(totals["tax"], currency), "total": amount(totals["total"], currency)},
            "fulfillmentStartInstructions": [{
                "fulfillmentInstructionsType": "SHIP_TO", "ebaySupportedFulfillment": False,
                "shippingStep": {"shippingCarrierCode": "RoyalMail", "shippingServiceCode": order["shipping_tag"],
                                 "shipTo": {"fullName": name, "contactAddress": {
                                     "addressLine1": address["line1"], "addressLine2": address["line2"],
                                     "city": address["city"], "county": address["region"],
                                     "postalCode": address["postcode"], "countryCode": address["country"]},
                                     "primaryPhone": {"phoneNumber": address["phone"]}}}}],
            "lineItems": line_items,
        }
        if order["buyer_email"]:
            rendered["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"]["email"] = order["buyer_email"]
        return rendered

    def ship(self, call: Call, order_id: str) -> Response:
        body = call.request.json()
        with call.write() as db:
            order = order_get(db, call.account, order_id)
            if order is None:
                raise HttpError(self.error(404, "", f"Invalid Order Id: {order_id}", family="fulfillment",
                                           error_id=32100))
            items = {str(10_000_000_000 + item["id"]): item for item in order_items(db, [order["id"]])[order["id"]]}
            seen = set()
            for line in body["lineItems"]:
                if line["lineItemId"] not in items:
                    raise HttpError(self.error(400, "", f"Invalid line item id: {line['lineItemId']}",
                                               family="fulfillment", error_id=32200))
                if line["lineItemId"] in seen:
                    raise HttpError(self.error(400, "", "Duplicate line item in the request", family="fulfillment",
                                               error_id=32210))
                seen.add(line["lineItemId"])
            if order["status"] == FULFILLED:
                raise HttpError(self.error(409, "", "The line items are already shipped.", family="fulfillment",
                                           error_id=32600))
            fulfilment_id = body.get("trackingNumber") or secrets.token_hex(8)
            everything = seen == set(items)
            order_status_set(db, order, FULFILLED if everything else "IN_PROGRESS")
            event_record(db, call.account, "shipment", {
                "order_id": order_id, "tracking_number": body.get("trackingNumber", ""),
                "carrier": body.get("shippingCarrierCode", ""), "shipped_date": body.get("shippedDate", ""),
                "shipping_method": order["shipping_tag"],
                "items": [{"line_id": line["lineItemId"], "sku": items[line["lineItemId"]]["sku"],
                           "quantity": line["quantity"]} for line in body["lineItems"]]})
        location = f"{call.base_url}/sell/fulfillment/v1/order/{order_id}/shipping_fulfillment/{fulfilment_id}"
        return Response.json({}, 201, headers=[("Location", location)])


def account_deletion_notice(username: str, user_id: str = "") -> dict[str, Any]:
    """The notice eBay sends an application when a user closes their account: its body and signed header."""
    body = json.dumps({
        "metadata": {"topic": "MARKETPLACE_ACCOUNT_DELETION", "schemaVersion": "1.0", "deprecated": False},
        "notification": {"notificationId": str(uuid.uuid4()), "eventDate": datetime.now(UTC).isoformat(),
                         "publishDate": datetime.now(UTC).isoformat(), "publishAttemptCount": 1,
                         "data": {"username": username, "userId": user_id or secrets.token_hex(8),
                                  "eiasToken": secrets.token_urlsafe(24)}},
    }).encode()
    signature = SIGNING_KEY.sign(body, ec.ECDSA(hashes.SHA1()))
    header = base64.b64encode(json.dumps({"alg": "ECDSA", "kid": SIGNING_KEY_ID, "digest": "SHA1",
                                          "signature": base64.b64encode(signature).decode()}).encode()).decode()
    return {"headers": {"X-EBAY-SIGNATURE": header, "Content-Type": "application/json"}, "body": body.decode()}

"""patchListingsItem (Listings Items 2021-08-01): contract/listings.json. Shared with the JSON listings feed."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sandbox.amazon.common import AmazonBase, marketplace
from sandbox.api import Call
from sandbox.state.common import Account
from sandbox.state.listings import listing_by_sku, stock_record
from sandbox.web import Response


def issue(code: str, message: str, *, category: str = "", attribute: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {"code": code, "message": message, "severity": "ERROR",
                             "categories": [category] if category else []}
    if attribute:
        found["attributeNames"] = [attribute]
    return found


class ListingsApi(AmazonBase):
    def patch_listing(self, call: Call, seller_id: str, sku: str) -> Response:
        self.require_marketplace(call, call.request.arg("marketplaceIds"))
        if seller_id != call.account.seller_id:
            raise self.fail(403, "Unauthorized", "Access to requested resource is denied.")
        body = call.request.json()
        with call.write() as db:
            issues = self.apply_patches(db, call.account, sku, body["patches"])
        return Response.json({"sku": sku, "status": "INVALID" if issues else "ACCEPTED",
                              "submissionId": uuid.uuid4().hex, "issues": issues})

    def apply_patches(self, db, account: Account, sku: str, patches: list[dict[str, Any]]) -> list[dict]:
        """Apply one listing's patches; the issues that made it INVALID (nothing applied then)."""
        listing = listing_by_sku(db, account, sku)
        if listing is None:
            return [issue("4000001", "SKU not found")]
        changes: dict[str, Any] = {}
        problems = []
        for patch in patches:
            if patch["op"] == "delete":
                # Deleting stock or price attributes is outside what the sandbox keeps of a listing.
                continue
            value = patch.get("value")
            entries = [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []
            if patch["path"] == "/attributes/fulfillment_availability":
                problems += self.read_availability(entries, changes)
            elif patch["path"] == "/attributes/purchasable_offer":
                problems += self.read_offer(account, entries, changes)
        if problems:
            return problems
        stock_record(db, account, listing, **changes)
        return []

    def read_availability(self, entries: list[dict[str, Any]], changes: dict[str, Any]) -> list[dict]:
        if not entries:
            return [issue("90220", "fulfillment_availability needs one value object", category="MISSING_ATTRIBUTE",
                          attribute="fulfillment_availability")]
        entry, problems = entries[0], []
        if entry.get("fulfillment_channel_code", "DEFAULT") != "DEFAULT":
            problems.append(issue("90220", "fulfillment_channel_code must be DEFAULT for a merchant listing",
                                  category="INVALID_ATTRIBUTE", attribute="fulfillment_availability"))
        for key, target in (("quantity", "quantity"), ("lead_time_to_ship_max_days", "latency")):
            if key not in entry:
                continue
            number = entry[key]
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                problems.append(issue("90220", f"{key} must be a non-negative integer", category="INVALID_ATTRIBUTE",
                                      attribute="fulfillment_availability"))
            else:
                changes[target] = number
        return problems

    def read_offer(self, account: Account, entries: list[dict[str, Any]], changes: dict[str, Any]) -> list:
        """The offer for every buyer: keyed by marketplace, currency and audience (ALL when not given)."""
        currency = marketplace(account.marketplace_id)[2]
        for entry in entries:
            if (entry.get("marketplace_id") != account.marketplace_id or entry.get("currency") != currency
                    or entry.get("audience", "ALL") != "ALL"):
                continue
            try:
                price = entry["our_price"][0]["schedule"][0]["value_with_tax"]
            except (TypeError, KeyError, IndexError):
                return [issue("90220", "purchasable_offer needs our_price[0].schedule[0].value_with_tax",
                              category="MISSING_PRICE", attribute="purchasable_offer")]
            if isinstance(price, bool) or not isinstance(price, int | float) or price <= 0:
                return [issue("90220", "value_with_tax must be a positive number", category="INVALID_PRICE",
                              attribute="purchasable_offer")]
            changes["price"] = Decimal(str(price))
        return []

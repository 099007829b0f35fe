"""Amazon SP-API and its Login with Amazon token endpoint, as the contract files in
channels/connectors/amazon/contract/ define them (one module per API family).

Each route's operation name is the contract's operation id, so the sandbox checks every request against the
contract before its handler runs (and, in tests, every answer).
"""

from __future__ import annotations

from sandbox.amazon.auth import AuthApi
from sandbox.amazon.fba import FbaApi
from sandbox.amazon.feeds import FeedsApi
from sandbox.amazon.listings import ListingsApi
from sandbox.amazon.orders import OrdersApi
from sandbox.amazon.reports import ReportsApi

__all__ = ["AmazonApi"]


class AmazonApi(AuthApi, OrdersApi, ListingsApi, FeedsApi, ReportsApi, FbaApi):
    def routes(self) -> None:
        add = self.router.add
        add("POST", "/auth/o2/token", "token", self.token, authenticated=False, limited=False)
        # Seller Central's consent page (in real life on sellercentral, not on the token host): no token, no plan.
        add("GET", "/apps/authorize/consent", "consent", self.consent, authenticated=False, limited=False)
        add("GET", "/sellers/v1/marketplaceParticipations", "getMarketplaceParticipations", self.participations)
        add("GET", "/orders/2026-01-01/orders", "searchOrders", self.search_orders)
        add("POST", "/orders/v0/orders/{order_id}/shipmentConfirmation", "confirmShipment", self.confirm_shipment)
        add("PATCH", "/listings/2021-08-01/items/{seller_id}/{sku}", "patchListingsItem", self.patch_listing)
        add("POST", "/feeds/2021-06-30/documents", "createFeedDocument", self.create_feed_document)
        add("GET", "/feeds/2021-06-30/documents/{document_id}", "getFeedDocument", self.get_feed_document)
        add("POST", "/feeds/2021-06-30/feeds", "createFeed", self.create_feed)
        add("GET", "/feeds/2021-06-30/feeds/{feed_id}", "getFeed", self.get_feed)
        add("POST", "/reports/2021-06-30/reports", "createReport", self.create_report)
        add("GET", "/reports/2021-06-30/reports/{report_id}", "getReport", self.get_report)
        add("GET", "/reports/2021-06-30/documents/{document_id}", "getReportDocument", self.get_report_document)
        add("GET", "/fba/inventory/v1/summaries", "getInventorySummaries", self.inventory_summaries)
        add("POST", "/fba/outbound/2020-07-01/fulfillmentOrders", "createFulfillmentOrder",
            self.create_fulfillment_order)
        add("GET", "/fba/outbound/2020-07-01/fulfillmentOrders/{order_id}", "getFulfillmentOrder",
            self.get_fulfillment_order)
        # The presigned document urls (S3 in real life): no SP-API token, no usage plan.
        add("PUT", "/_documents/feeds/{document_id}", "uploadFeedDocument", self.upload_document,
            authenticated=False, limited=False)
        add("GET", "/_documents/feeds/{document_id}", "downloadFeedDocument", self.download_feed_document,
            authenticated=False, limited=False)
        add("GET", "/_documents/reports/{document_id}", "downloadReportDocument", self.download_report_document,
            authenticated=False, limited=False)

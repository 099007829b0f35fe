"""The connector registry: one class per channel kind, looked up by `Channel.kind`."""

from __future__ import annotations

from channels.connectors.amazon.connector import AmazonConnector
from channels.connectors.base import Connector
from channels.connectors.ebay.connector import EbayConnector
from channels.connectors.ekm.connector import EkmConnector
from channels.connectors.rakuten.connector import RakutenConnector
from channels.connectors.shopify.connector import ShopifyConnector
from channels.connectors.woocommerce.connector import WooCommerceConnector

CONNECTORS: dict[str, type[Connector]] = {
    AmazonConnector.kind: AmazonConnector,
    EbayConnector.kind: EbayConnector,
    EkmConnector.kind: EkmConnector,
    RakutenConnector.kind: RakutenConnector,
    ShopifyConnector.kind: ShopifyConnector,
    WooCommerceConnector.kind: WooCommerceConnector,
}


def connector_class(kind: str) -> type[Connector]:
    try:
        return CONNECTORS[kind]
    except KeyError:
        raise LookupError(f"no connector for channel kind {kind!r}") from None

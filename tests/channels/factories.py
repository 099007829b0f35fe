import factory

from channels.models import (
    Channel,
    ChannelListing,
    ListingPushMark,
    ListingPushState,
    OrderStatusMapping,
    ShippingMapping,
    SyncRun,
)

STATE_FIELDS = (
    "last_pushed_quantity", "last_pushed_latency", "last_pushed_price", "last_pushed_at", "is_ended", "push_error",
)


def waiting_for_push(listing: ChannelListing) -> bool:
    return ChannelListing.objects.get(pk=listing.pk).waiting_for_push


def last_push(listing: ChannelListing) -> ListingPushState | None:
    return ListingPushState.objects.filter(listing_id=listing.pk).first()


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Channel {n}")
    kind = Channel.Kind.EKM
    api_base_url = "http://127.0.0.1:8100/ekm/demo"
    credentials = factory.LazyFunction(lambda: {"client_id": "id", "client_secret": "s3cret", "refresh_token": "r1"})



class AmazonChannelFactory(ChannelFactory):
    kind = Channel.Kind.AMAZON
    api_base_url = "http://127.0.0.1:8100/amazon/demo"
    marketplace_id = "A1F83G8C2ARO7P"
    seller_id = "A2SELLER"


class EbayChannelFactory(ChannelFactory):
    kind = Channel.Kind.EBAY
    api_base_url = "http://127.0.0.1:8100/ebay/demo"
    marketplace_id = "EBAY_GB"


class RakutenChannelFactory(ChannelFactory):
    kind = Channel.Kind.RAKUTEN
    api_base_url = "http://127.0.0.1:8100/rakuten/demo"
    currency = "EUR"


class WooCommerceChannelFactory(ChannelFactory):
    kind = Channel.Kind.WOOCOMMERCE
    api_base_url = "https://teapots.example.co.uk"
    credentials = factory.LazyFunction(lambda: {"consumer_key": "ck_test", "consumer_secret": "cs_test"})


class ChannelListingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelListing

    channel = factory.SubFactory(ChannelFactory)
    stock_item = factory.SubFactory("tests.inventory.factories.StockItemFactory")
    channel_sku = factory.LazyAttribute(lambda o: o.stock_item.sku if o.stock_item else f"CH-{o.channel.pk}")
    external_id = factory.Sequence(lambda n: f"L{n}")
    title = "Listing"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """`push_pending` and the last pushed values are the push bookkeeping's rows, not the listing's.

        Unless told, a linked merchant listing is waiting for a push, as listing_create leaves it."""
        pending = kwargs.pop("push_pending", None)
        state = {name: kwargs.pop(name) for name in STATE_FIELDS if name in kwargs}
        listing = super()._create(model_class, *args, **kwargs)
        if pending is None:
            pending = listing.stock_item_id is not None and not listing.fulfilled_by_channel
        if pending:
            ListingPushMark.objects.create(listing=listing, channel_id=listing.channel_id)
        if state:
            ListingPushState.objects.create(listing=listing, channel_id=listing.channel_id, **state)
        return listing


class OrderStatusMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderStatusMapping

    channel = factory.SubFactory(ChannelFactory)
    channel_status = "PENDING"


class ShippingMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ShippingMapping

    channel = factory.SubFactory(ChannelFactory)
    tag = "Standard"


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncRun

    channel = factory.SubFactory(ChannelFactory)
    kind = SyncRun.Kind.ORDERS

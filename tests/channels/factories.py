import factory

from channels.models import Channel, ChannelListing, OrderStatusMapping, ShippingMapping, SyncRun


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


class RakutenChannelFactory(ChannelFactory):
    kind = Channel.Kind.RAKUTEN
    api_base_url = "http://127.0.0.1:8100/rakuten/demo"
    currency = "EUR"


class ChannelListingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelListing

    channel = factory.SubFactory(ChannelFactory)
    stock_item = factory.SubFactory("tests.inventory.factories.StockItemFactory")
    channel_sku = factory.LazyAttribute(lambda o: o.stock_item.sku if o.stock_item else f"CH-{o.channel.pk}")
    external_id = factory.Sequence(lambda n: f"L{n}")
    title = "Listing"


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

from decimal import Decimal

import factory

from inventory.models import KitComponent, Location, StockItem, StockItemProperty, StockLevel


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Warehouse {n}")
    kind = Location.Kind.WAREHOUSE


class StockItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockItem

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    title = factory.Faker("sentence", nb_words=3)
    retail_price = Decimal("9.99")


class StockItemPropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockItemProperty

    stock_item = factory.SubFactory(StockItemFactory)
    name = "Latency"
    value = "3"


class StockLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockLevel

    stock_item = factory.SubFactory(StockItemFactory)
    location = factory.SubFactory(LocationFactory)
    quantity = 10


class FbaLocationFactory(LocationFactory):
    """Amazon's fulfilment centre: its stock is never sent for a merchant-fulfilled listing."""

    name = factory.Sequence(lambda n: f"FBA {n}")
    kind = Location.Kind.EXTERNAL


class KitComponentFactory(factory.django.DjangoModelFactory):
    """One part of a kit: `quantity` of `component` in every `kit`."""

    class Meta:
        model = KitComponent

    kit = factory.SubFactory(StockItemFactory)
    component = factory.SubFactory(StockItemFactory)
    quantity = 1

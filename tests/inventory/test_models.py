import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inventory.models import Location, StockLevel
from tests.inventory.factories import LocationFactory, StockItemFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


def test_physical_stock_cannot_go_negative():
    level = StockLevelFactory(quantity=2)

    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.filter(pk=level.pk).update(quantity=-1)


def test_negative_quantity_has_a_clear_validation_message():
    level = StockLevelFactory.build(stock_item=StockItemFactory(), location=LocationFactory(), quantity=-3)

    with pytest.raises(ValidationError) as exc:
        level.full_clean()

    assert exc.value.message_dict["quantity"] == ["Physical stock cannot go below zero."]


def test_one_level_per_item_and_location():
    level = StockLevelFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.create(stock_item=level.stock_item, location=level.location, quantity=1)


def test_available_may_be_negative_when_oversold():
    level = StockLevelFactory(quantity=2, in_open_orders=5)

    assert level.available == -3


def test_only_one_default_location():
    LocationFactory(name="Main", is_default=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        LocationFactory(name="Second", is_default=True)


def test_an_external_fulfilment_centre_cannot_be_the_default_warehouse():
    location = Location(name="FBA UK", kind=Location.Kind.EXTERNAL, is_default=True)

    with pytest.raises(ValidationError) as exc:
        location.full_clean()

    assert "An FBA location cannot be the default warehouse." in str(exc.value)

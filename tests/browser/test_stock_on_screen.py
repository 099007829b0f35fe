"""Stock typed on screen in a real browser: a level changed with a reason, a stock count previewed and applied,
an import whose bad lines are all shown before a good file is previewed and applied."""

import pytest

from inventory.models import Location, StockItem, StockLevel, StockMovement

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

@pytest.fixture
def warehouse():
    leeds = Location.objects.create(name="Leeds", is_default=True)
    for sku, quantity in (("MUG", 10), ("LAMP", 4)):
        StockLevel.objects.create(stock_item=StockItem.objects.create(sku=sku, title=sku.title()), location=leeds,
                                  quantity=quantity)
    return leeds


def on_hand(sku: str) -> int:
    return StockLevel.objects.get(stock_item__sku=sku).quantity


def test_staff_change_count_and_import_stock_on_screen(page, staff_admin, warehouse, tmp_path):
    admin = staff_admin

    # The mug's page: Change stock on the Leeds row, five found in returns.
    page.goto(f"{admin}/inventory/stockitem/{StockItem.objects.get(sku='MUG').pk}/change/")
    page.locator("tr", has_text="Leeds").locator("a:text-is('Change stock')").click()
    page.fill("#id_change", "+5")
    page.fill("#id_note", "Found in returns")
    page.click("input[value=Save]")
    page.wait_for_selector("text=MUG at Leeds: 10 → 15 (Found in returns).")
    assert page.locator("td:text-is('Found in returns')").count() == 1
    assert on_hand("MUG") == 15

    # A stock count of Leeds: one bad line is shown with its number, then the corrected count is previewed.
    page.goto(f"{admin}/inventory/stocklevel/")
    page.click("a:text-is('Stock count')")
    page.fill("#id_counted", "MUG,14\nLAMP,four\n")
    page.click("input[value=Preview]")
    page.wait_for_selector("text=Line 2: the count 'four' is not a whole number.")
    page.fill("#id_counted", "MUG,14\nLAMP,4\n")
    page.click("input[value=Preview]")
    page.wait_for_selector("#stock-preview")
    row = page.locator("#stock-preview tr", has_text="MUG")
    assert row.locator("td").all_inner_texts() == ["MUG", "Leeds", "15", "→ 14", "-1"]
    assert on_hand("MUG") == 15
    page.click("input[value=Apply]")
    page.wait_for_selector("text=1 stock levels changed.")
    assert on_hand("MUG") == 14
    assert StockMovement.objects.filter(reason=StockMovement.Reason.STOCK_COUNT).count() == 1

    # The import: both bad lines at once, then a good file previewed and applied.
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text("sku,location,quantity\nMUG,Leeds,3\nVASE,Leeds,1\nLAMP,York,2\n")
    good.write_text("sku,location,quantity\nMUG,Leeds,3\nLAMP,Leeds,4\n")
    page.goto(f"{admin}/inventory/stocklevel/")
    page.click("a:text-is('Import stock CSV')")
    page.set_input_files("#id_file", str(bad))
    page.click("input[value=Preview]")
    page.wait_for_selector("text=Line 3: no stock item has the SKU 'VASE'.")
    assert page.locator("text=Line 4: no location is called 'York'.").count() == 1
    page.set_input_files("#id_file", str(good))
    page.click("input[value=Preview]")
    page.wait_for_selector("#stock-preview")
    assert page.locator("#stock-preview tr", has_text="MUG").locator("td").all_inner_texts() == [
        "MUG", "Leeds", "14", "→ 3", "-11"]
    page.click("input[value=Apply]")
    page.wait_for_selector("text=CSV import good.csv: 1 stock levels changed.")
    assert (on_hand("MUG"), on_hand("LAMP")) == (3, 4)

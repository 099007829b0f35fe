"""The stock item page, with what each channel gets for the item and why.

Inventory must not import channels, so this section is added from the channels side: the StockItem
admin is re-registered as a subclass with a read-only "What each channel gets" section.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from channels.selectors import channel_quantity_explain, stock_item_listings
from inventory.admin import StockItemAdmin
from inventory.models import StockItem


class StockItemWithChannelsAdmin(StockItemAdmin):
    readonly_fields = [*StockItemAdmin.readonly_fields, "channel_quantities"]

    @admin.display(description="What each channel gets")
    def channel_quantities(self, obj: StockItem) -> str:
        if obj.pk is None:
            return "—"
        sections = []
        for listing in stock_item_listings(stock_item_id=obj.pk):
            steps = format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((step.label, step.value, step.note) for step in channel_quantity_explain(listing)),
            )
            last_push = listing.last_push
            pushed = (
                f"last pushed {last_push.last_pushed_quantity} at "
                f"{timezone.localtime(last_push.last_pushed_at):%Y-%m-%d %H:%M}"
                if last_push and last_push.last_pushed_at else "never pushed"
            )
            state = "; push pending" if listing.waiting_for_push else ""
            error = f"; last push refused: {last_push.push_error}" if last_push and last_push.push_error else ""
            sections.append(
                format_html(
                    "<h4>{} — {} ({}{}{})</h4><table><tbody>{}</tbody></table>",
                    listing.channel.name, listing.channel_sku, pushed, state, error, steps,
                )
            )
        if not sections:
            return "Not linked to any channel listing."
        return format_html_join("", "{}", ((section,) for section in sections))


admin.site.unregister(StockItem)
admin.site.register(StockItem, StockItemWithChannelsAdmin)

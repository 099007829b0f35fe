"""Admin search that stays fast on a real catalogue.

Django's admin search is a case-insensitive "contains" on every search field, which on PostgreSQL is
``UPPER(column::text) LIKE '%term%'``: a scan of the whole table unless a trigram index covers that exact
expression. The indexes are created by the apps' migrations on PostgreSQL only (SQLite has no trigram
index and its catalogues are small). A search field on the stock item (``stock_item__sku``) would OR
across a join, which no index can serve, so rows belonging to a stock item are searched in two steps.
"""

from __future__ import annotations

from functools import reduce
from operator import and_, or_

from django.db import migrations
from django.db.models import Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

from inventory.models import StockItem

# Above this many matching stock items the term is broad: the plain join is cheap then, because the
# first page of rows fills after a short scan.
STOCK_ITEM_MATCHES_INLINED = 5000


def search_words(term: str) -> list[str]:
    """The admin's own splitting: words, or "quoted phrases" kept whole."""
    words = []
    for word in smart_split(term):
        if word[:1] in {'"', "'"} and word[-1:] == word[:1] and len(word) > 1:
            word = unescape_string_literal(word)
        if word:
            words.append(word)
    return words


def search_q(words: list[str], fields: list[str]) -> Q:
    """Every word appears in at least one of the fields (the admin's rule)."""
    return reduce(and_, (reduce(or_, (Q(**{f"{field}__icontains": word}) for field in fields)) for word in words))


class StockItemSearchMixin:
    """Search a changelist whose rows belong to a stock item, ``stock_item__`` fields included, index-first.

    A row matches when every word is in its own search fields, or every word is in its stock item's.
    """

    def get_search_results(self, request, queryset: QuerySet, search_term: str):
        words = search_words(search_term)
        if not words:
            return queryset, False
        fields = list(self.get_search_fields(request))
        own = [field for field in fields if not field.startswith("stock_item__")]
        of_item = [field.removeprefix("stock_item__") for field in fields if field.startswith("stock_item__")]
        if not of_item:
            return super().get_search_results(request, queryset, search_term)
        matches = search_q(words, own) if own else Q(pk__in=[])
        items = list(
            StockItem.objects.filter(search_q(words, of_item))
            .order_by()
            .values_list("pk", flat=True)[: STOCK_ITEM_MATCHES_INLINED + 1]
        )
        if len(items) <= STOCK_ITEM_MATCHES_INLINED:
            matches |= Q(stock_item_id__in=items)
        else:
            matches |= search_q(words, [f"stock_item__{field}" for field in of_item])
        return queryset.filter(matches), False


def trigram_search_indexes(table: str, columns: list[str]) -> migrations.RunPython:
    """A migration step adding a trigram index per searched column, on PostgreSQL only."""

    def index_name(column: str) -> str:
        return f"{table}_{column}_search"[:63]

    def create(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        # pg_trgm is a trusted extension: the database's owner may create it without being a superuser.
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in columns:
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{index_name(column)}" ON "{table}" '
                f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
            )

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in columns:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{index_name(column)}"')

    return migrations.RunPython(create, drop, elidable=False)

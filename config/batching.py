"""The one chunker: long lists cut into batches for a statement or a channel call."""

from collections.abc import Iterator, Sequence
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def id_batch_size() -> int:
    """How many ids one statement may bind: SQLite caps bound parameters (half its cap leaves room for the
    statement's others); PostgreSQL with client-side binding has no cap."""
    limit = connection.features.max_query_params
    return limit // 2 if limit else 1_000_000

import pytest
from django.conf import settings
from django.core.cache import cache


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL row locks: set DATABASE_URL to a PostgreSQL server")
    skip_redis = pytest.mark.skip(reason="needs a Redis server: set REDIS_URL")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Debounce keys and cached tokens from one test must not decide the next."""
    cache.clear()
    yield
    cache.clear()

import json
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from channels.connectors.base import ConnectorConfig
from channels.connectors.ratelimit import InProcessLimiter

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_json(name: str):
    return json.loads(fixture_text(name))


class MemoryStore:
    """A CredentialStore in memory, with a real lock so concurrent refreshes serialise as in production."""

    def __init__(self, **credentials: str) -> None:
        self.data = dict(credentials)
        self.saves: list[dict] = []
        self._lock = threading.Lock()

    def load(self) -> dict[str, str]:
        return dict(self.data)

    def save(self, credentials) -> None:
        self.saves.append(dict(credentials))
        self.data.update(credentials)

    @contextmanager
    def locked(self):
        with self._lock:
            yield


@pytest.fixture
def limiter():
    """A limiter of the test's own, with no sleeping: quotas are asserted, not waited for."""
    return InProcessLimiter(sleep=lambda seconds: None)


AMAZON_BASE = "https://sp.example.test"
AMAZON_AUTH = "https://auth.example.test"
EKM_BASE = "https://ekm.example.test"
RAKUTEN_BASE = "https://rakuten.example.test"


def amazon_config(**overrides) -> ConnectorConfig:
    return ConnectorConfig(**{
        "channel_id": 1, "kind": "amazon", "name": "Amazon UK", "api_base_url": AMAZON_BASE,
        "auth_base_url": AMAZON_AUTH, "seller_id": "A2SELLER", "marketplace_id": "A1F83G8C2ARO7P",
        "currency": "GBP", "allowed_hosts": frozenset({"sp.example.test", "auth.example.test"}), **overrides,
    })


def ekm_config(**overrides) -> ConnectorConfig:
    return ConnectorConfig(**{
        "channel_id": 2, "kind": "ekm", "name": "EKM shop", "api_base_url": EKM_BASE, "auth_base_url": EKM_BASE,
        "allowed_hosts": frozenset({"ekm.example.test"}), **overrides,
    })


def rakuten_config(**overrides) -> ConnectorConfig:
    return ConnectorConfig(**{
        "channel_id": 3, "kind": "rakuten", "name": "Rakuten FR", "api_base_url": RAKUTEN_BASE,
        "auth_base_url": RAKUTEN_BASE, "seller_id": "shopfr", "currency": "EUR",
        "allowed_hosts": frozenset({"rakuten.example.test"}), **overrides,
    })

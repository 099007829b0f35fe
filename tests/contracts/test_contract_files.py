"""Every marketplace package carries its contract, and the sandbox serves nothing outside it."""

import pytest

from channels.connectors import CONNECTORS
from channels.connectors.contracts import contract_load


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_each_contract_file_says_where_it_comes_from(kind):
    contract = contract_load(kind)

    for name, data in contract.files.items():
        assert data["source"].strip(), f"{kind}/{name} names no source"
        assert data["api_version"].strip(), f"{kind}/{name} names no API version"
        assert data["date"] >= "2026-01-01", f"{kind}/{name} has no date"
        for operation_id, spec in data["operations"].items():
            assert spec.get("responses"), f"{kind}/{name}: {operation_id} declares no response"


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_every_sandbox_route_is_an_operation_of_the_vendors_contract(kind):
    api = {a.kind: a for a in _apis()}[kind]
    contract = contract_load(kind)

    outside = [route.operation for route in api.router.routes
               if isinstance(route.operation, str) and route.operation not in contract.operations]
    assert outside == [], f"the {kind} sandbox serves operations its contract lacks: {outside}"


def _apis():
    from sandbox.app import SandboxApp

    # The emulations' routes only: no store is opened.
    return SandboxApp(store=None).apis.values()

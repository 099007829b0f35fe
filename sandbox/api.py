"""What every emulated channel shares: the per-request context and the channel's error shapes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from channels.connectors.contracts import Contract, Operation, contract_load
from sandbox.context import SandboxContext
from sandbox.ratelimit import Decision, Limit
from sandbox.state.common import Account
from sandbox.state.faults import fault_take
from sandbox.web import HttpError, Request, Response, Router


@dataclass
class Call:
    """One request to one account's emulated API."""

    context: SandboxContext
    request: Request
    account: Account
    operation: str
    # The path under the account prefix plus `?query`: what fault regexes are searched in.
    target: str
    base_url: str
    # Whether a malformed fault is armed for the account: saves list handlers a write transaction.
    malformed_armed: bool = False
    # A malformed fault spoiled this answer on purpose: it is outside the contract by design, so not checked.
    spoiled: bool = False

    def read(self):
        return self.context.store.read()

    def write(self):
        return self.context.store.write()

    def take_malformed(self, records: list[Any]) -> dict[str, Any] | None:
        """The malformed fault armed for this request, if the list has a record to spoil."""
        if not records or not self.malformed_armed:
            return None
        with self.write() as db:
            fault = fault_take(db, self.account, self.request.method, self.target, malformed=True)
        if fault is None:
            return None
        self.spoiled = True
        index = min(int(fault["options"].get("index", 0)), len(records) - 1)
        return {"index": index, "corrupt": fault["options"].get("corrupt", "")}


def render_rows(call: Call, rows: Sequence[Any], variant: str, load_items: Callable[[list[int]], dict],
                render: Callable[[Any, list], str]) -> list[str]:
    """Each row rendered by `render(row, items)`, from the cache where the order has not changed."""
    cache = call.context.render_cache
    keys = [(call.account.kind, call.account.id, row["id"], row["revision"], variant) for row in rows]
    texts = [cache.get(key) for key in keys]
    missing = [row["id"] for row, text in zip(rows, texts, strict=True) if text is None]
    items = load_items(missing) if missing else {}
    for index, row in enumerate(rows):
        if texts[index] is None:
            texts[index] = render(row, items[row["id"]])
            cache.put(keys[index], texts[index])
    return texts


class ChannelApi:
    kind: str
    # Published limits by bucket key; the `sandbox` profile raises slow refill rates to 1/s.
    published_limits: dict[str, Limit] = {}

    def __init__(self) -> None:
        self.router = Router()
        self.routes()

    def routes(self) -> None:
        raise NotImplementedError

    def error(self, status: int, code: str, message: str) -> Response:
        raise NotImplementedError

    # --- The vendor's contract (channels/connectors/<kind>/contract/): requests refused, answers checked ---

    @property
    def contract(self) -> Contract:
        return contract_load(self.kind)

    def contract_operation(self, operation: str) -> Operation | None:
        """The contract's operation a route serves; None for a request naming no operation of the vendor's."""
        return self.contract.operations.get(operation)

    def request_parts(self, request: Request) -> dict[str, Any]:
        """The request as the contract describes it: query, headers, form and body."""
        content_type = request.header("Content-Type").split(";", 1)[0].strip().lower()
        parts: dict[str, Any] = {
            "query": {name: values[0] for name, values in request.query.items()},
            "headers": {name.lower(): value for name, value in (request.headers or {}).items()},
        }
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            parts["form"] = request.form()
        elif request.body:
            parts["body"] = request.json() if content_type.endswith("json") else request.body
        return parts

    def refuse_invalid(self, call: Call, problems: list[str]) -> Response:
        """The vendor's answer to a request its contract refuses (shape and status as the real service)."""
        return self.error(400, "InvalidInput", "; ".join(problems))

    def response_document(self, response: Response) -> Any:
        """The answer's body as its contract schema describes it (JSON here; Rakuten turns XML into one)."""
        if not response.body:
            return None
        return json.loads(response.body)

    def authenticate(self, call: Call) -> None:
        """Raise HttpError with the channel's answer when the call's credentials do not hold."""

    def invalid_credentials(self, call: Call) -> Response:
        """What a request sees when the `expire_token` fault fired and the channel has no token to expire."""
        return self.error(401, "Unauthorized", "Access token expired")

    def throttled(self, decision: Decision) -> Response:
        response = self.error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
        response.headers.append(("Retry-After", str(decision.retry_after)))
        return response

    def rate_headers(self, decision: Decision | None) -> list[tuple[str, str]]:
        return []

    def bucket_key(self, operation: str) -> str:
        return operation

    def limit_for(self, account: Account, operation: str) -> tuple[str, Limit] | None:
        """The bucket a call draws from, from the account's `rate_limits` setting (see README)."""
        config = account.settings.get("rate_limits") or {}
        profile = config.get("profile", "sandbox")
        if profile == "off":
            return None
        key = self.bucket_key(operation)
        override = config.get(key) or config.get("*")
        if override:
            return key, Limit(float(override["rate"]), int(override["burst"]))
        published = self.published_limits.get(key)
        if published is None:
            return None
        if profile == "published":
            return key, published
        return key, Limit(max(published.rate, 1.0), published.burst)

    def fail(self, status: int, code: str, message: str) -> HttpError:
        return HttpError(self.error(status, code, message))

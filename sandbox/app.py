"""Dispatch: the control API, or one account's channel API through faults, rate limit and auth."""

from __future__ import annotations

import logging
import re
import threading

from sandbox.amazon import AmazonApi
from sandbox.api import Call, ChannelApi
from sandbox.context import SandboxContext
from sandbox.control_api import ControlApi
from sandbox.ebay import EbayApi
from sandbox.ekm import EkmApi
from sandbox.rakuten import RakutenApi
from sandbox.shopify import ShopifyApi
from sandbox.state.accounts import access_tokens_expire, account_get
from sandbox.state.faults import fault_take, malformed_armed
from sandbox.state.received import call_count
from sandbox.store import Store, StoreClosed
from sandbox.web import DROP, HttpError, Request, Response
from sandbox.woocommerce import WooCommerceApi

logger = logging.getLogger("sandbox")

CHANNEL_PATH = re.compile(r"^/(amazon|ebay|ekm|rakuten|shopify|woocommerce)/([^/]+)(/.*)?$")


class SandboxApp:
    def __init__(self, store: Store, *, check_answers: bool = False) -> None:
        self.context = SandboxContext(store)
        # Tests set it: an answer outside the vendor's contract becomes a 500 naming the problem.
        self.check_answers = check_answers
        self.control = ControlApi(self.context)
        apis = (AmazonApi(), EbayApi(), EkmApi(), RakutenApi(), ShopifyApi(), WooCommerceApi())
        self.apis: dict[str, ChannelApi] = {api.kind: api for api in apis}
        # Set on shutdown so `slow` and `timeout` faults stop sleeping.
        self.stopping = threading.Event()

    def handle(self, request: Request) -> Response:
        try:
            if request.path == "/_control" or request.path.startswith("/_control/"):
                return self.control.handle(request, request.path[len("/_control"):])
            found = CHANNEL_PATH.match(request.path)
            if found is None:
                return Response.json({"error": f"no such path {request.path}; see sandbox/README.md"}, 404)
            return self.channel(request, found[1], found[2], found[3] or "/")
        except HttpError as error:
            return error.response
        except StoreClosed:
            # Stopping: hang up as a server going down would, rather than answer for a vendor.
            return DROP
        except Exception:
            logger.exception("sandbox.request_failed %s %s", request.method, request.path)
            return Response.json({"error": "sandbox internal error"}, 500)

    def channel(self, request: Request, kind: str, name: str, path: str) -> Response:
        api = self.apis[kind]
        with self.context.store.read() as db:
            account = account_get(db, kind, name)
        if account is None:
            return api.error(404, "NotFound", f"No sandbox {kind} account {name!r}.")
        route, params = api.router.match(request.method, path)
        if route is None:
            return api.error(404, "NotFound", f"No {kind} operation {request.method} {path}.")
        operation = route.operation_for(request)
        target = f"{path}?{request.query_string}" if request.query_string else path
        call = Call(self.context, request, account, operation, target, f"http://{request.host}/{kind}/{name}")
        with self.context.store.write() as db:
            call_count(db, account, operation)
            fault = fault_take(db, account, request.method, target, malformed=False)
            call.malformed_armed = malformed_armed(db, account)
        if fault is not None:
            answer = self.inject(api, call, fault)
            if answer is not None:
                return answer
        decision = None
        if route.limited:
            bucket = api.limit_for(account, operation)
            if bucket is not None:
                decision = self.context.limiter.take(account.id, bucket[0], bucket[1])
        headers = api.rate_headers(decision)
        try:
            if decision is not None and not decision.allowed:
                response = api.throttled(decision)
            else:
                if route.authenticated:
                    api.authenticate(call)
                response = self.answer(api, call, route, params)
        except HttpError as error:
            response = error.response
        if self.check_answers and response is not DROP:
            response = self.answer_checked(api, call, response)
        response.headers.extend(headers)
        return response

    def answer(self, api: ChannelApi, call: Call, route, params: dict[str, str]) -> Response:
        """The handler's answer, once the request holds to the vendor's contract for its operation."""
        operation = api.contract_operation(call.operation)
        if operation is not None:
            problems = operation.request_errors(**api.request_parts(call.request))
            if problems:
                return api.refuse_invalid(call, problems)
        return route.handler(call, **params)

    def answer_checked(self, api: ChannelApi, call: Call, response: Response) -> Response:
        operation = api.contract_operation(call.operation)
        if operation is None or call.spoiled:
            return response
        try:
            problems = operation.response_errors(response.status, api.response_document(response))
        except ValueError as error:
            problems = [f"the body does not parse: {error}"]
        if not problems:
            return response
        logger.error("sandbox.contract_broken %s %s: %s", call.operation, response.status, problems)
        return Response.json({"sandbox_contract_broken": call.operation, "status": response.status,
                              "problems": problems[:10]}, 500)

    def inject(self, api: ChannelApi, call: Call, fault: dict) -> Response | None:
        """Apply a fired fault: an answer to send instead, or None to go on with the request."""
        kind = fault["type"]
        if kind == "429":
            response = api.error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
            response.headers.append(("Retry-After", f"{fault['retry_after']:g}"))
            return response
        if kind in ("500", "503"):
            response = api.error(int(kind), "InternalFailure" if kind == "500" else "ServiceUnavailable",
                                 "We encountered an internal error. Please try again.")
            if kind == "503":
                response.headers.append(("Retry-After", f"{fault['retry_after']:g}"))
            return response
        if kind == "slow":
            if self.stopping.wait(fault["delay"]):
                return DROP
            return None
        if kind == "timeout":
            # The client gives up first; the request is never processed, and no answer is written.
            self.stopping.wait(fault["delay"])
            return DROP
        if kind == "expire_token":
            with self.context.store.write() as db:
                access_tokens_expire(db, call.account)
            if call.account.kind == "rakuten":
                return api.invalid_credentials(call)
        return None

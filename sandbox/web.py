"""The few HTTP pieces the sandbox needs: a parsed request, a response, a regex router.

Kept free of any framework so the server stays a thin layer over `http.server` and the
channel emulations read like the API tables in README.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, unquote


class HttpError(Exception):
    """Stops a handler and answers with `response` (already in the channel's error shape)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class Request:
    method: str
    path: str
    query_string: str
    headers: Any
    body: bytes = b""
    host: str = "127.0.0.1"
    _form: dict[str, str] | None = field(default=None, repr=False)
    _files: dict[str, bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.query = parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default) if self.headers is not None else default

    def json(self) -> Any:
        """The JSON body, or None when it is missing or does not parse (handlers answer 400 then)."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return None

    def form(self) -> dict[str, str]:
        """Fields of a urlencoded or multipart body, first value of each."""
        if self._form is None:
            self._parse_body()
        return self._form

    def files(self) -> dict[str, bytes]:
        if self._files is None:
            self._parse_body()
        return self._files

    def _parse_body(self) -> None:
        self._form, self._files = {}, {}
        content_type = self.header("Content-Type")
        if content_type.startswith("multipart/form-data"):
            head = f"Content-Type: {content_type}\r\n\r\n".encode()
            message = BytesParser(policy=policy.default).parsebytes(head + self.body)
            if not message.is_multipart():
                return
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    self._files[name] = payload
                else:
                    self._form[name] = payload.decode("utf-8", "replace")
        else:
            parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            self._form = {name: values[0] for name, values in parsed.items()}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(status, body, [("Content-Type", "application/json"), *(headers or [])])

    @classmethod
    def xml(cls, text: str, status: int = 200) -> Response:
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()
        return cls(status, body, [("Content-Type", "text/xml; charset=utf-8")])

    @classmethod
    def raw(cls, body: bytes, content_type: str, status: int = 200) -> Response:
        return cls(status, body, [("Content-Type", content_type)])

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status)


# Answer that closes the connection without writing anything (the `timeout` fault).
DROP = Response(status=0)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str | Callable[[Request], str]
    handler: Callable[..., Response]
    # Token endpoints and the S3-like document URLs take no access token and no rate-limit token.
    authenticated: bool = True
    limited: bool = True

    def operation_for(self, request: Request) -> str:
        return self.operation(request) if callable(self.operation) else self.operation


class Router:
    """Routes `METHOD /path/{name}` templates; a `{name}` matches one percent-encoded segment."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, operation, handler, *, authenticated=True, limited=True) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self.routes.append(Route(method, re.compile(f"^{regex}$"), operation, handler, authenticated, limited))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, {name: unquote(value) for name, value in found.groupdict().items()}
        return None, {}

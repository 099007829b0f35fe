"""What the contract tests of every marketplace share: a request as its contract describes it, and where an
answer carries a field its contract does not declare (the sandbox tests use that too)."""

import json
from urllib.parse import parse_qs, urlsplit

import jsonschema

from channels.connectors.contracts import Operation


def valid(schema, value, defs) -> bool:
    return jsonschema.Draft202012Validator({"$defs": defs, "allOf": [schema]}).is_valid(value)


def _resolve(schema, defs):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = defs[schema["$ref"].split("/")[-1]]
    return schema


def undeclared(schema, value, defs, where="") -> list[str]:
    """Where `value` carries a field `schema` does not declare (an open `additionalProperties` object aside)."""
    schema = _resolve(schema, defs)
    if not isinstance(schema, dict):
        return []
    found = []
    for sub in schema.get("allOf", []):
        found += undeclared(sub, value, defs, where)
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []):
            if valid(sub, value, defs):
                found += undeclared(sub, value, defs, where)
    if isinstance(value, dict) and "properties" in schema:
        extra = schema.get("additionalProperties")
        for name, child in value.items():
            if name in schema["properties"]:
                found += undeclared(schema["properties"][name], child, defs, f"{where}.{name}")
            elif isinstance(extra, dict):
                found += undeclared(extra, child, defs, f"{where}.{name}")
            elif extra is not True:
                found.append(f"{where}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, child in enumerate(value):
            found += undeclared(schema["items"], child, defs, f"{where}[{index}]")
    return found


def answer_undeclared(operation: Operation, status: int, body) -> list[str]:
    """The fields of an answer its operation's response schema for that status does not declare."""
    schema = operation.spec["responses"].get(str(status))
    return undeclared(schema, body, operation.defs) if schema else []


def query_of(url: str) -> dict[str, str]:
    """A url's query parameters by their first value, blank ones kept."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def request_parts(request, *, raw_body: bool = False) -> dict:
    """A `requests` request as the contract describes it: its query, headers, and form or body (JSON when its
    content type says so, unless `raw_body`: a document's bytes, whatever they hold)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    parts = {"query": query_of(request.url), "headers": headers}
    content_type = headers.get("content-type", "")
    body = request.body.encode() if isinstance(request.body, str) else request.body
    if content_type.startswith("application/x-www-form-urlencoded"):
        parts["form"] = {name: values[0] for name, values in parse_qs(body.decode()).items()}
    elif body:
        parts["body"] = json.loads(body) if "json" in content_type and not raw_body else body
    return parts

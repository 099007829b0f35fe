"""The contract files: each operation a connector uses, with its request and response schemas.

Each marketplace package holds its contract in `<kind>/contract/*.json`, written from the vendor's own
published definition (the source, API version and date are in each file). One file is one API family:

    {"source": ..., "api_version": ..., "date": ..., "notes": [...],
     "$defs": {shared JSON Schemas},
     "operations": {operation_id: {"method", "path" (with {placeholders}), "summary",
                                   "query", "headers", "form", "body": JSON Schemas of each part sent,
                                   "responses": {status: JSON Schema of the body, or null for none}}}}

The connectors' tests validate what the connector sends and what it is given against these files, and the
sandbox validates every request it receives and every answer it sends against the same files. The module
is pure (no Django, no ORM), so both sides may read it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

CONNECTORS_DIR = Path(__file__).resolve().parent
FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER
PARTS = ("query", "headers", "form", "body")


@dataclass(frozen=True)
class Operation:
    kind: str
    family: str
    operation_id: str
    method: str
    path: str
    spec: Mapping[str, Any]
    defs: Mapping[str, Any]

    @functools.cached_property
    def path_pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", self.path)
        regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
        return re.compile(f"^{regex}$")

    def _validator(self, schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator({"$defs": self.defs, "allOf": [schema]}, format_checker=FORMAT_CHECKER)

    def request_errors(self, **parts: Any) -> list[str]:
        """Why a request breaks the contract: one message per problem, empty when it is valid.

        `parts` are query, headers, form and body; a part the operation defines but the request leaves out
        is checked as an empty object (query, headers, form) or as absent (body).
        """
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise TypeError(f"unknown request parts {sorted(unknown)}")
        problems: list[str] = []
        for part in PARTS:
            schema = self.spec.get(part)
            value = parts.get(part)
            if schema is None:
                if part == "body" and value not in (None, b"", ""):
                    problems.append("body: this operation takes no body")
                continue
            if value is None:
                if part == "body":
                    problems.append("body: required")
                    continue
                value = {}
            problems += [f"{part}: {_where(e)}{e.message}" for e in self._validator(schema).iter_errors(value)]
        return problems

    def response_errors(self, status: int, body: Any) -> list[str]:
        """Why an answer breaks the contract: an undeclared status, or a body its schema refuses."""
        responses = self.spec.get("responses", {})
        key = str(status) if str(status) in responses else "default" if "default" in responses else None
        if key is None:
            return [f"status {status} is not declared for {self.operation_id}"]
        schema = responses[key]
        if schema is None:
            return [] if body in (None, b"", "") else [f"status {status} of {self.operation_id} has no body"]
        return [f"{_where(e)}{e.message}" for e in self._validator(schema).iter_errors(body)]

    def path_params(self, path: str) -> dict[str, str] | None:
        match = self.path_pattern.match(path)
        return match.groupdict() if match else None


def _where(error: jsonschema.ValidationError) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") + (
        ": " if error.absolute_path else ""
    )


@dataclass(frozen=True)
class Contract:
    kind: str
    files: Mapping[str, Mapping[str, Any]]
    operations: Mapping[str, Operation]

    def operation(self, operation_id: str) -> Operation:
        try:
            return self.operations[operation_id]
        except KeyError:
            raise LookupError(f"the {self.kind} contract has no operation {operation_id!r}") from None

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation a request is for, with its path parameters; None when the contract has none."""
        for operation in self.operations.values():
            if operation.method == method.upper() and (params := operation.path_params(path)) is not None:
                return operation, params
        return None


@functools.cache
def contract_load(kind: str) -> Contract:
    """Every contract file of one marketplace package, checked as JSON Schemas on the way in."""
    folder = CONNECTORS_DIR / kind / "contract"
    files: dict[str, Mapping[str, Any]] = {}
    operations: dict[str, Operation] = {}
    for file in sorted(folder.glob("*.json")):
        data = json.loads(file.read_text())
        for key in ("source", "api_version", "date", "operations"):
            if key not in data:
                raise ValueError(f"{file}: a contract file names its {key}")
        files[file.stem] = data
        defs = data.get("$defs", {})
        # The shared schemas once, then each part alone: each part checked beside the defs costs ~0.5 s.
        jsonschema.Draft202012Validator.check_schema({"$defs": defs})
        for operation_id, spec in data["operations"].items():
            if operation_id in operations:
                raise ValueError(f"{file}: operation {operation_id} is defined twice")
            for part in (*PARTS, *(spec.get("responses") or {}).keys()):
                schema = spec.get(part) if part in PARTS else spec["responses"][part]
                if schema is not None:
                    jsonschema.Draft202012Validator.check_schema(schema)
            operations[operation_id] = Operation(
                kind=kind, family=file.stem, operation_id=operation_id, method=spec["method"].upper(),
                path=spec["path"], spec=spec, defs=defs,
            )
    if not operations:
        raise LookupError(f"no contract files in {folder}")
    return Contract(kind=kind, files=files, operations=operations)

import pytest

from tests.contracts.helpers import undeclared


@pytest.mark.parametrize(("value", "found"), [
    ({"a": 1, "b": {"c": 2}}, [".b"]), ({"a": 1, "payload": [{"e": 1, "d": 1}]}, [".payload[0].d"]), ({"a": 1}, []),
])
def test_undeclared_finds_fields_a_schema_does_not_declare(value, found):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "payload": {"type": "array", "items": {
        "$ref": "#/$defs/Entry"}}}}
    assert undeclared(schema, value, {"Entry": {"type": "object", "properties": {"e": {}}}}) == found


def test_undeclared_follows_additional_properties_and_the_branch_a_value_takes():
    schema = {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"a": {}},
                                           "additionalProperties": {"type": "object", "properties": {"b": {}}}}]}
    assert undeclared(schema, None, {}) == []
    assert undeclared(schema, {"a": 1, "x": {"b": 1, "c": 2}}, {}) == [".x.c"]

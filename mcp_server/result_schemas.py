"""Output schemas that Python MCP clients can check on every call without a measurable cost.

The mcp 1.x client validates each structured result with `jsonschema.validate`, which first checks the schema
itself against its meta-schema and resolves every `$ref` anew. Against pydantic's draft 2020-12 output that costs
tens of milliseconds for a page of tasks. The same constraints declared as draft-07, with every `$ref` inlined and
nullable types written as a type list, check in a fraction of that and accept and refuse exactly the same values.
"""

from __future__ import annotations

from typing import Any

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
DEFINITIONS = "#/$defs/"
# Keywords whose value is one subschema, or a list of them; `properties` maps names to subschemas.
SUBSCHEMA = ("items", "additionalProperties", "not")
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
# Draft 2020-12 keywords draft-07 does not know: a schema using them cannot be restated as draft-07.
NEWER_ONLY = frozenset({"prefixItems", "$dynamicRef", "$dynamicAnchor", "unevaluatedProperties", "dependentRequired"})


def client_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's JSON schema of a result model, restated as a self-contained draft-07 schema."""
    definitions = schema.get("$defs", {})
    body = {key: value for key, value in schema.items() if key != "$defs"}
    return {"$schema": DRAFT_07, **_restate(body, definitions, ())}


def _restate(node: dict[str, Any], definitions: dict[str, Any], inlining: tuple[str, ...]) -> dict[str, Any]:
    if reference := node.get("$ref"):
        name = reference.removeprefix(DEFINITIONS)
        if name in inlining or name not in definitions:
            raise ValueError(f"cannot inline {reference} (recursive or not a local definition)")
        merged = {**definitions[name], **{key: value for key, value in node.items() if key != "$ref"}}
        return _restate(merged, definitions, (*inlining, name))
    if used := NEWER_ONLY & node.keys():
        raise ValueError(f"draft-07 has no {', '.join(sorted(used))}")
    restated: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":  # pydantic's titles repeat the field names; fewer keywords, faster checks
            continue
        if key == "properties":
            restated[key] = {name: _restate(sub, definitions, inlining) for name, sub in value.items()}
        elif key in SUBSCHEMA and isinstance(value, dict):
            restated[key] = _restate(value, definitions, inlining)
        elif key in SUBSCHEMA_LISTS:
            restated[key] = [_restate(sub, definitions, inlining) for sub in value]
        else:
            restated[key] = value
    return _nullable_as_type_list(restated)


def _nullable_as_type_list(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [{type: T}, {type: null}]` as `type: [T, null]`: the same values, without a validator per branch."""
    options = node.get("anyOf")
    if not options or len(options) != 2 or not all(option.keys() == {"type"} for option in options):
        return node
    types = [option["type"] for option in options]
    if "null" not in types or "type" in node:
        return node
    return {**{key: value for key, value in node.items() if key != "anyOf"}, "type": types}

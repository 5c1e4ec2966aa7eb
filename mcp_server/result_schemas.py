"""Output schemas that Python MCP clients can check on every call at little cost.

The mcp 1.x client validates each structured result with `jsonschema.validate`, which first checks the schema
itself against its meta-schema (a fresh validator, every `$ref` resolved anew) and then the result. Against
pydantic's draft 2020-12 output that costs tens of milliseconds for a page of tasks. Restated as draft-07 the same
constraints check in a fraction of that; what is left is priced per schema node and keyword:

- a `type` list costs ~3x a single type in the meta-schema check (its `anyOf` tries a failing branch first), so a
  nullable leaf that recurs in a result is declared once under `definitions` and referenced (a `$ref` costs little
  to check, and a lookup each time a value is validated);
- nodes under `items` stay inline: they are validated once per element, where a lookup each would cost more than
  the one check it saves;
- an `enum` of strings needs no `type: string` beside it, and titles and defaults constrain nothing.

The restated schema accepts and refuses exactly the values pydantic's schema does.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
DEFINITIONS = "#/$defs/"
SHARED = "#/definitions/"
# Keywords whose value is one subschema, or a list of them; `properties` maps names to subschemas.
SUBSCHEMA = ("items", "additionalProperties", "not")
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
# Draft 2020-12 keywords draft-07 does not know: a schema using them cannot be restated as draft-07.
NEWER_ONLY = frozenset({"prefixItems", "$dynamicRef", "$dynamicAnchor", "unevaluatedProperties", "dependentRequired"})
# Annotations that constrain nothing: pydantic's titles repeat the field names, defaults describe inputs.
DROPPED = frozenset({"title", "default"})
ANNOTATIONS = frozenset({"description"})


def client_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's JSON schema of a result model, restated as a self-contained draft-07 schema."""
    definitions = schema.get("$defs", {})
    body = {key: value for key, value in schema.items() if key != "$defs"}
    restated = _restate(body, definitions, ())
    shared = _share_nullable_leaves(restated)
    return {"$schema": DRAFT_07, **restated, **({"definitions": shared} if shared else {})}


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
        if key in DROPPED:
            continue
        if key == "properties":
            restated[key] = {name: _restate(sub, definitions, inlining) for name, sub in value.items()}
        elif key in SUBSCHEMA and isinstance(value, dict):
            restated[key] = _restate(value, definitions, inlining)
        elif key in SUBSCHEMA_LISTS:
            restated[key] = [_restate(sub, definitions, inlining) for sub in value]
        else:
            restated[key] = value
    return _without_implied_type(_nullable_as_type_list(restated))


def _nullable_as_type_list(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [{type: T}, {type: null}]` as `type: [T, null]`: the same values, without a validator per branch."""
    options = node.get("anyOf")
    if not options or len(options) != 2 or not all(option.keys() == {"type"} for option in options):
        return node
    types = [option["type"] for option in options]
    if "null" not in types or "type" in node:
        return node
    return {**{key: value for key, value in node.items() if key != "anyOf"}, "type": types}


def _without_implied_type(node: dict[str, Any]) -> dict[str, Any]:
    """An `enum` of strings already admits only strings."""
    if node.get("type") != "string" or not all(isinstance(value, str) for value in node.get("enum", [None])):
        return node
    return {key: value for key, value in node.items() if key != "type"}


def _share_nullable_leaves(schema: dict[str, Any]) -> dict[str, Any]:
    """Nullable leaves (`{type: [T, null]}` and nothing else) that recur among the properties validated once per
    result become `definitions`, which those properties then reference; `schema` is changed in place."""
    holders = list(_properties_outside_items(schema))
    leaves = Counter(_key(sub) for properties in holders for sub in properties.values() if _is_nullable_leaf(sub))
    shared: dict[str, Any] = {}
    for properties in holders:
        for name, sub in properties.items():
            if _is_nullable_leaf(sub) and leaves[_key(sub)] > 1:
                definition = "-or-".join(sub["type"])
                shared[definition] = {"type": sub["type"]}
                properties[name] = {"$ref": SHARED + definition, **_annotations(sub)}
    return shared


def _properties_outside_items(node: dict[str, Any]) -> Any:
    """Every `properties` mapping that is not under an `items` keyword (those run once per array element)."""
    if "properties" in node:
        yield node["properties"]
        for sub in node["properties"].values():
            yield from _properties_outside_items(sub)


def _is_nullable_leaf(node: dict[str, Any]) -> bool:
    """Only a type list with null, and perhaps a description (kept beside the `$ref`, which checks skip)."""
    return node.keys() - ANNOTATIONS == {"type"} and isinstance(node["type"], list) and "null" in node["type"]


def _annotations(node: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if key in ANNOTATIONS}


def _key(node: dict[str, Any]) -> str:
    """What makes two leaves the same definition: their type, not their description."""
    return json.dumps(node["type"])

"""Input schemas must stay within what Gemini accepts as function parameters."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


def walk(schema, path="$"):
    yield path, schema
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from walk(value, f"{path}[{index}]")


async def input_schemas(client) -> dict[str, dict]:
    """The schemas exactly as an MCP client receives them (and the agent hands them to Gemini)."""
    return {tool.name: tool.inputSchema for tool in (await client.list_tools()).tools}


async def test_no_references_or_additional_properties(client):
    schemas = await input_schemas(client)
    for name, schema in schemas.items():
        for path, node in walk(schema):
            if isinstance(node, dict):
                assert not {"$ref", "$defs", "additionalProperties"} & set(node), f"{name} {path}"


async def test_any_of_only_makes_a_value_nullable(client):
    schemas = await input_schemas(client)
    for name, schema in schemas.items():
        for path, node in walk(schema):
            if isinstance(node, dict) and "anyOf" in node:
                types = [option.get("type") for option in node["anyOf"]]
                assert len(types) == 2, f"{name} {path}: {node['anyOf']}"
                assert "null" in types, f"{name} {path}: {node['anyOf']}"


async def test_every_argument_is_described(client):
    schemas = await input_schemas(client)
    for name, schema in schemas.items():
        for argument, spec in schema["properties"].items():
            assert spec.get("description"), f"{name}.{argument} has no description"

"""Input schemas must stay within what Gemini accepts as function parameters."""

from __future__ import annotations

import pytest
from jsonschema import Draft7Validator, ValidationError

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


async def output_schemas(client) -> dict[str, dict]:
    return {tool.name: tool.outputSchema for tool in (await client.list_tools()).tools if tool.outputSchema}


async def test_output_schemas_are_self_contained_draft_07(client):
    """Python MCP clients check every result against these: draft-07 without references checks in a fraction of
    the time a draft 2020-12 schema takes."""
    schemas = await output_schemas(client)
    assert {"add_task", "list_tasks", "delete_completed_tasks"} <= schemas.keys()
    for name, schema in schemas.items():
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#", name
        Draft7Validator.check_schema(schema)
        for path, node in walk(schema):
            if isinstance(node, dict):
                assert not {"$ref", "$defs"} & node.keys(), f"{name} {path}"


async def test_real_results_match_their_output_schema(client):
    """The declared schemas stay honest: actual results of each kind validate, and a broken one does not."""
    schemas = await output_schemas(client)
    added = await client.call_tool(
        "add_task",
        {"title": "water the plants", "tags": ["home"], "due": "2026-12-15", "recurrence": "FREQ=WEEKLY"},
    )
    await client.call_tool("add_task", {"title": "call the bank", "description": "about the card"})
    listed = await client.call_tool("list_tasks", {"limit": 1})
    counted = await client.call_tool("delete_completed_tasks", {})
    results = {"add_task": added, "list_tasks": listed, "delete_completed_tasks": counted}
    for name, result in results.items():
        assert not result.isError, result.content
        Draft7Validator(schemas[name]).validate(result.structuredContent)
    assert listed.structuredContent["next_cursor"], "a page with a cursor was checked"
    broken = {**added.structuredContent, "status": "archived"}
    with pytest.raises(ValidationError):
        Draft7Validator(schemas["add_task"]).validate(broken)
    with pytest.raises(ValidationError):
        Draft7Validator(schemas["list_tasks"]).validate({"tasks": [{**broken, "status": "open", "id": "7"}]})

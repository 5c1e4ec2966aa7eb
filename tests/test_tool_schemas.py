"""Input schemas must stay within what Gemini accepts as function parameters."""

from __future__ import annotations

import json

import jsonschema
import pytest
from jsonschema import Draft7Validator, ValidationError
from referencing import Registry

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
    """Python MCP clients check every result against these: draft-07 with only local references checks in a
    fraction of the time a draft 2020-12 schema takes."""
    schemas = await output_schemas(client)
    assert {"add_task", "list_tasks", "delete_completed_tasks", "undo_last_change"} <= schemas.keys()
    for name, schema in schemas.items():
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#", name
        assert schema["type"] == "object", name
        Draft7Validator.check_schema(schema)
        for path, node in walk(schema):
            if isinstance(node, dict):
                assert "$defs" not in node, f"{name} {path}"
                if "$ref" in node:
                    assert node["$ref"].removeprefix("#/definitions/") in schema["definitions"], f"{name} {path}"


def conforms(schema: dict, value: dict) -> None:
    """What the mcp client does with every structured result."""
    jsonschema.validate(value, schema, registry=Registry())


async def test_real_results_match_their_output_schema(client):
    """The declared schemas stay honest: every kind of result the tools return validates."""
    schemas = await output_schemas(client)
    added = await client.call_tool(
        "add_task",
        {"title": "water the plants", "tags": ["home"], "due": "2026-12-15", "recurrence": "FREQ=WEEKLY"},
    )
    plain = await client.call_tool("add_task", {"title": "call the bank", "description": "about the card"})
    completed = await client.call_tool("complete_task", {"task_id": plain.structuredContent["id"]})
    results = {
        "add_task": [added, plain],
        "complete_task": [completed],
        "list_tasks": [
            await client.call_tool("list_tasks", {"status": "all", "limit": 1}),
            await client.call_tool("list_tasks", {"status": "all"}),
            await client.call_tool("list_tasks", {"query": "nothing matches this"}),
        ],
        "delete_completed_tasks": [
            await client.call_tool("delete_completed_tasks", {}),
            await client.call_tool("delete_completed_tasks", {"confirm": True}),
        ],
        "undo_last_change": [await client.call_tool("undo_last_change", {})],
    }
    for name, calls in results.items():
        for result in calls:
            assert not result.isError, result.content
            conforms(schemas[name], result.structuredContent)
    pages = [result.structuredContent for result in results["list_tasks"]]
    assert pages[0]["next_cursor"], "a page with a cursor was checked"
    assert not pages[2]["tasks"], "an empty page was checked"
    assert completed.structuredContent["completed_at"], "a completed task was checked"
    assert results["delete_completed_tasks"][1].structuredContent["deleted"] == 1
    assert results["undo_last_change"][0].structuredContent["restored"], "an undo that restored a task was checked"


async def test_wrong_shapes_are_refused(client):
    """The schemas still describe the shape: a result off it in any property is refused."""
    schemas = await output_schemas(client)
    task = (await client.call_tool("add_task", {"title": "water the plants", "due": "2026-12-15"})).structuredContent
    missing = {key: value for key, value in task.items() if key != "updated_at"}
    wrong_tasks = [
        missing,
        {**task, "status": "archived"},
        {**task, "priority": "urgent"},
        {**task, "title": None},
        {**task, "id": "7"},
        {**task, "due": 20261215},
        {**task, "completed_at": False},
        {**task, "series_id": "s1"},
        {**task, "tags": [1]},
    ]
    for wrong in wrong_tasks:
        for name, value in [
            ("add_task", wrong),
            ("list_tasks", {"tasks": [task, wrong], "next_cursor": None}),
            ("undo_last_change", {"undone": True, "message": "restored", "restored": [wrong], "removed": []}),
        ]:
            with pytest.raises(ValidationError):
                conforms(schemas[name], value)
    with pytest.raises(ValidationError):
        conforms(schemas["list_tasks"], {"tasks": [task], "next_cursor": 3})
    with pytest.raises(ValidationError):
        conforms(schemas["delete_completed_tasks"], {"deleted": "1", "would_delete": 0, "message": "done"})


async def test_text_block_is_the_structured_content_as_compact_json(client):
    """Clients parse both copies of a result: the text one carries no padding and keeps letters as UTF-8."""
    result = await client.call_tool("add_task", {"title": "café à côté", "tags": ["été"]})
    (block,) = result.content
    assert block.type == "text"
    assert json.loads(block.text) == result.structuredContent
    assert block.text == json.dumps(result.structuredContent, separators=(",", ":"), ensure_ascii=False)

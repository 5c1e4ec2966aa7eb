"""String arguments read as JSON as FastMCP reads them (a list sent as '["a"]'), except in fields that take text."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from mcp.server.fastmcp.utilities.func_metadata import FuncMetadata

from mcp_server.arguments import StrictToolServer, _text_fields
from mcp_server.config import Settings
from mcp_server.runtime import Runtime
from mcp_server.tools import create_mcp_server

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
# What clients send in a string: JSON texts of every kind, spaced as JSON allows, and text that only looks like it.
TYPED = (
    st.tuples(JSON_VALUES, st.sampled_from(["", " ", "\n", "\t ", "\r\n"]))
    .map(lambda value: value[1] + json.dumps(value[0]) + value[1])
    .filter(lambda typed: typed.strip() == typed or typed.strip(" \t\n\r") != typed)
    | st.text(alphabet=st.sampled_from('[]{}nul "1.e,\n\x0b'), max_size=8)
    | st.text(max_size=12)
)


def tool_metadata() -> dict[str, FuncMetadata]:
    server = create_mcp_server(Runtime(settings=Settings(database_url="sqlite://"), engine=None))  # type: ignore[arg-type]
    assert isinstance(server, StrictToolServer)
    return {tool.name: tool.fn_metadata for tool in server._tool_manager.list_tools()}


TOOLS = tool_metadata()


@given(tool=st.sampled_from(sorted(TOOLS)), typed=st.data())
def test_strings_are_read_as_fastmcp_reads_them_outside_text_fields(tool: str, typed: st.DataObject) -> None:
    metadata = TOOLS[tool]
    data = {name: typed.draw(TYPED, label=name) for name in metadata.arg_model.model_fields}
    text = {name: value for name, value in data.items() if name in _text_fields(metadata.arg_model)}
    # FastMCP's own reading of every field but the text ones, which keep what was typed.
    expected = FuncMetadata.pre_parse_json(metadata, {k: v for k, v in data.items() if k not in text}) | text
    assert metadata.pre_parse_json(data) == expected


def test_only_list_object_and_null_texts_are_read_and_text_fields_are_not() -> None:
    metadata = TOOLS["add_task"]
    read = metadata.pre_parse_json({"title": "[1]", "tags": ' ["a"]\n', "priority": "null", "due": "null"})
    assert read == {"title": "[1]", "tags": ["a"], "priority": None, "due": "null"}
    assert metadata.pre_parse_json({"tags": "true", "priority": '"high"'}) == {"tags": "true", "priority": '"high"'}

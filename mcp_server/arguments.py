"""Tool arguments as strict as their JSON schema says, checked by the server whatever the client sends.

The input schemas stay plain (no `additionalProperties`, which Gemini refuses), so what the schema cannot say
is enforced here: only declared argument names, text a database can store, whole numbers and booleans that are
JSON numbers and JSON booleans (never "yes" or 1), and validation errors worded as `field: problem`.
"""

from __future__ import annotations

import importlib.metadata
import json
import types
from collections.abc import Callable, Sequence
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.fastmcp.utilities.func_metadata import FuncMetadata
from mcp.types import CallToolResult, ContentBlock
from pydantic import AfterValidator, BaseModel, BeforeValidator, Strict, ValidationError

from mcp_server.result_schemas import client_schema
from mcp_server.telemetry import served_tool_call

NAMES_SHOWN = 40  # characters of an unknown argument name echoed back
JSON_WHITESPACE = " \t\n\r"


def storable(value: str) -> str:
    """Text both databases can store: no NUL character, no lone surrogate (which is not Unicode text)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\u0000), which text cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode text") from None
    return value


def _integral(value: object) -> object:
    """JSON Schema counts 3.0 as an integer, so a client that sends numbers as floats is understood."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def at_most(limit: int) -> AfterValidator:
    """A length bound checked by the server alone (a `maxLength` in the schema is not for every client)."""

    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters (got {len(value)})")
        return value

    return AfterValidator(check)


Text = Annotated[str, AfterValidator(storable)]
WholeNumber = Annotated[int, Strict(), BeforeValidator(_integral)]
StrictBool = Annotated[bool, Strict()]


def describe(error: ValidationError) -> str:
    """`field: problem` for each problem, naming list items by index (tags[2]); the input is not echoed."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
        problems.append(f"{field.lstrip('.')}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


@cache
def _text_fields(arg_model: type[BaseModel]) -> frozenset[str]:
    """The fields of a tool's argument model that take text, worked out once per tool."""
    return frozenset(name for name, field in arg_model.model_fields.items() if _takes_text(field.annotation))


def _takes_text(annotation: Any) -> bool:
    """Whether a field's type accepts a string: `str`, `Annotated[str, …]`, or a union with either."""
    if annotation is str:
        return True
    if get_origin(annotation) is Annotated:
        return _takes_text(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_takes_text(member) for member in get_args(annotation))
    return False


@cache
def _returns_result(fn: Callable[..., Any]) -> bool:
    """Whether a tool function is declared to return a CallToolResult (bare, or `Annotated` with its model)."""
    returned = get_type_hints(fn, include_extras=True).get("return")
    return CallToolResult in (returned, *get_args(returned)[:1])


@cache
def _json_fields(arg_model: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of the fields whose string values are read as JSON: those that take no text."""
    text_fields = _text_fields(arg_model)
    return frozenset(
        key
        for name, field in arg_model.model_fields.items()
        if name not in text_fields and field.annotation is not str
        for key in (name, field.alias)
        if key is not None
    )


def _may_hold_json_value(text: str) -> bool:
    """Whether the text can be JSON for a list, an object or null: the only values FastMCP keeps of what it reads."""
    stripped = text.strip(JSON_WHITESPACE)
    return stripped[:1] in ("[", "{") or stripped == "null"


class _TextKeepingMetadata(FuncMetadata):
    """FastMCP reads a string argument as JSON when its field is not exactly `str` (for clients that send a list
    as '["a"]'); a text field such as `description: str | None` would then store "null" as nothing and refuse
    '[1, 2]'. Text fields keep what was typed; other fields are still read, as FastMCP reads them, but only text
    that can be JSON for a list, an object or null is parsed: FastMCP tried every string (a priority, a date) and
    dropped what it got unless it was one of those."""

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        json_fields = _json_fields(self.arg_model)
        parsed = dict(data)
        for name, value in data.items():
            if name in json_fields and isinstance(value, str) and _may_hold_json_value(value):
                try:
                    read = json.loads(value)
                except ValueError:
                    continue
                if not isinstance(read, str | int | float):
                    parsed[name] = read
        return parsed


class StrictToolServer(FastMCP):
    """FastMCP that refuses arguments a tool does not declare, words argument errors per field, and declares
    output schemas that clients validate cheaply (see result_schemas)."""

    _declared: dict[str, frozenset[str]] | None = None

    def __init__(self, name: str, **settings: Any) -> None:
        super().__init__(name, **settings)
        # The version clients see in serverInfo is ours. Without one the SDK looks up its own package version with
        # importlib.metadata each time it builds initialization options: once per request in stateless HTTP, where
        # that lookup was an eighth of the server's CPU per call.
        self._mcp_server.version = importlib.metadata.version("taskflow")

    def add_tool(self, fn: Callable[..., Any], name: str | None = None, **options: Any) -> None:
        super().add_tool(fn, name=name, **options)
        tool = self._tool_manager.get_tool(name or fn.__name__)
        assert tool is not None
        metadata = tool.fn_metadata = _TextKeepingMetadata.model_construct(**dict(tool.fn_metadata))
        if metadata.output_schema is not None:
            metadata.output_schema = client_schema(metadata.output_schema)

    def answers_directly(self, name: str) -> bool:
        """Whether `call_tool(name, …)` always returns a ready CallToolResult, so a transport can write it as is:
        a tool of ours that takes no per-call Context and returns its result ready-made."""
        tool = self._tool_manager.get_tool(name)
        return tool is not None and tool.context_kwarg is None and _returns_result(tool.fn)

    @served_tool_call
    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Sequence[ContentBlock] | dict[str, Any]:
        declared = (await self._declared_arguments()).get(name)
        if declared is not None and (unknown := sorted(set(arguments) - declared)):
            shown = ", ".join(repr(argument[:NAMES_SHOWN]) for argument in unknown)
            raise ToolError(
                f"Error executing tool {name}: unknown argument(s) {shown}; {name} takes {', '.join(sorted(declared))}"
            )
        tool = self._tool_manager.get_tool(name)
        if tool is None or tool.context_kwarg is not None:
            return await self._call_through_fastmcp(name, arguments)
        # What FastMCP's Tool.run does, without the per-call Context our tools never take, and without checking a
        # ready-made result against its model again: `structured` has just dumped it from that very model.
        try:
            result = await tool.fn_metadata.call_fn_with_arg_validation(tool.fn, tool.is_async, arguments, None)
        except ValidationError as error:
            raise ToolError(f"Error executing tool {name}: {describe(error)}") from None
        except Exception as error:
            raise ToolError(f"Error executing tool {name}: {error}") from error
        return result if isinstance(result, CallToolResult) else tool.fn_metadata.convert_result(result)

    async def _call_through_fastmcp(self, name: str, arguments: dict[str, Any]) -> Any:
        try:
            return await super().call_tool(name, arguments)
        except ToolError as error:
            if isinstance(error.__cause__, ValidationError):
                raise ToolError(f"Error executing tool {name}: {describe(error.__cause__)}") from None
            raise

    async def _declared_arguments(self) -> dict[str, frozenset[str]]:
        if self._declared is None:
            tools = await self.list_tools()
            self._declared = {tool.name: frozenset(tool.inputSchema.get("properties", {})) for tool in tools}
        return self._declared

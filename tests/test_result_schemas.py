"""The output schemas clients check every result against state what the tools return: every result the tools can
build validates, and a value off that shape is refused exactly when pydantic's own schema refuses it."""

from __future__ import annotations

from functools import cache
from typing import Any

import anyio
import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator
from pydantic import BaseModel
from referencing import Registry

from mcp_server.arguments import StrictToolServer
from mcp_server.models import BulkDeleteResult, TaskPage, TaskPublic, UndoResult
from mcp_server.tools import BulkResult, PageResult, TaskResult, UndoneResult, structured

RESULTS: dict[type[BaseModel], Any] = {
    TaskPublic: TaskResult,
    TaskPage: PageResult,
    BulkDeleteResult: BulkResult,
    UndoResult: UndoneResult,
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@cache
def declared(model: type[BaseModel]) -> dict[str, Any]:
    """The output schema our tool server declares for a tool returning this result, as clients receive it."""
    server = StrictToolServer("results")

    def tool() -> None: ...

    tool.__annotations__ = {"return": RESULTS[model]}
    server.add_tool(tool, name="tool", structured_output=True)
    (listed,) = anyio.run(server.list_tools)
    assert listed.outputSchema is not None
    return listed.outputSchema


def results() -> st.SearchStrategy[tuple[type[BaseModel], dict[str, Any]]]:
    """A result model and the structured content a tool returning one of its instances sends."""
    return st.sampled_from(list(RESULTS)).flatmap(
        lambda model: st.builds(model).map(lambda value: (model, structured(value).structuredContent))
    )


def places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member or element of a JSON value."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    return [place for key, member in items for place in [(*path, key), *places(member, (*path, key))]]


def changed(value: Any, path: tuple[Any, ...], replacement: Any, remove: bool) -> Any:
    """A copy of the value with the member at the path replaced, or taken out."""
    if not path:
        return replacement
    key, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if remove and not rest:
        del copy[key]
    else:
        copy[key] = changed(value[key], rest, replacement, remove)
    return copy


@settings(max_examples=300, deadline=None)
@given(results())
def test_every_result_validates_as_clients_check_it(result):
    model, content = result
    jsonschema.validate(content, declared(model), registry=Registry())


@settings(max_examples=500, deadline=None)
@given(results(), st.data())
def test_a_changed_result_is_refused_exactly_when_pydantic_refuses_it(result, data):
    model, content = result
    path = data.draw(st.sampled_from(places(content) or [()]))
    value = changed(content, path, data.draw(JSON), remove=bool(path) and data.draw(st.booleans()))
    reference = Draft202012Validator(model.model_json_schema(mode="serialization"))
    assert Draft7Validator(declared(model)).is_valid(value) == reference.is_valid(value), (path, value)

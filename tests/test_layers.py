"""The packages stay floors: each imports only the floors below it, and no module imports itself through others."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGES: list[str] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["root_packages"]


def test_every_import_keeps_the_contracts_in_pyproject():
    # The report on stdout names each import that breaks a contract.
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True) == 0


def test_no_module_reaches_itself_through_its_imports():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if chain := graph.find_shortest_chain(importer=imported, imported=module):
                cycles.append(" -> ".join((module, *chain)))
    assert cycles == []

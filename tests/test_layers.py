"""The packages stay floors: each imports only the floors below it, and no module imports itself through others."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGES: list[str] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["root_packages"]


def test_every_import_keeps_the_contracts_in_pyproject():
    # In a process of its own: import-linter configures logging with dictConfig, which would silence every logger
    # this test process already has. The report names each import that breaks a contract.
    lint_imports = Path(sys.executable).with_name("lint-imports")  # installed beside this interpreter
    command = [str(lint_imports), "--config", str(PYPROJECT), "--no-cache"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=PYPROJECT.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_module_reaches_itself_through_its_imports():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if chain := graph.find_shortest_chain(importer=imported, imported=module):
                cycles.append(" -> ".join((module, *chain)))
    assert cycles == []

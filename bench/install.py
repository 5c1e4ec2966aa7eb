"""What installing TaskFlow costs: wall time of `pip install` into a fresh virtual environment, and the size on disk
each direct dependency brings with it.

The anchor is the same fresh environment installing one small pure-Python package (`click`): what a venv and pip
cost before any of TaskFlow's dependencies. Both use pip's cache as it is on this machine (CI's is warm too), so the
figures are mostly resolution, unpacking and byte-compiling, not downloads. The size table reads the installed
files of each distribution; "only via it" is what would leave the environment if that one dependency went.
Run from the repository root: python -m bench.install --help
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

from packaging.requirements import Requirement

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/install.py`

from bench.common import describe, machine, table

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the fresh environment: each installed distribution's size and requirements, as JSON.
_INVENTORY = r"""
import importlib.metadata as md, json, os, re
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
out = {}
for dist in md.distributions():
    size = 0
    for file in dist.files or []:
        try: size += os.path.getsize(dist.locate_file(file))
        except OSError: pass
    out[norm(dist.metadata["Name"])] = {"size": size, "requires": dist.requires or []}
print(json.dumps(out))
"""


def _fresh_env(where: Path) -> Path:
    """A new virtual environment without system packages; its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin" / "python"


def _timed_install(python: Path, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"pip install {' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def _closure(name: str, inventory: dict[str, dict], extras: tuple[str, ...] = ()) -> set[str]:
    """The distribution and everything it requires, transitively, as installed."""
    seen: set[str] = set()
    stack = [(name, extras)]
    while stack:
        current, wanted = stack.pop()
        if current in seen or current not in inventory:
            continue
        seen.add(current)
        for text in inventory[current]["requires"]:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": extra}) for extra in wanted or ("",)):
                continue
            stack.append((requirement.name.lower().replace("_", "-"), tuple(requirement.extras)))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default=str(ROOT), help="what to install (default: this checkout)")
    options = parser.parse_args()
    print(describe("pip install: time and size", [("machine", machine()), ("installs", options.target)]))

    with tempfile.TemporaryDirectory(prefix="taskflow-install-") as scratch:
        anchor_python = _fresh_env(Path(scratch) / "anchor")
        anchor = _timed_install(anchor_python, "click")
        python = _fresh_env(Path(scratch) / "taskflow")
        taskflow = _timed_install(python, options.target)
        inventory = json.loads(subprocess.run([str(python), "-c", _INVENTORY], capture_output=True, check=True).stdout)

    print(
        table(
            ["install", "seconds", "ratio"],
            [["click (anchor)", anchor, 1.0], ["taskflow", taskflow, taskflow / anchor]],
        )
    )
    project = "taskflow"
    everything = _closure(project, inventory) - {project}
    size_of = {name: entry["size"] for name, entry in inventory.items()}
    print(f"\n{len(everything)} distributions, {sum(size_of[n] for n in everything) / 1e6:,.0f} MB installed\n")

    direct = [Requirement(text) for text in inventory[project]["requires"] if "extra ==" not in text]
    closures = {r.name.lower(): _closure(r.name.lower(), inventory, tuple(r.extras)) for r in direct}
    # A dependency that another one brings anyway (pydantic under mcp, a pinned transitive one) is folded into it.
    top = {
        name: closure
        for name, closure in closures.items()
        if not any(name != other and name in wider for other, wider in closures.items())
    }
    rows = []
    for name, closure in top.items():
        only = closure - set().union(*(c for other, c in top.items() if other != name))
        mb, only_mb = sum(size_of[n] for n in closure) / 1e6, sum(size_of[n] for n in only) / 1e6
        rows.append([name, len(closure), mb, len(only), only_mb])
    rows.sort(key=lambda row: row[4], reverse=True)
    print(table(["dependency", "dists", "MB with its own deps", "only via it", "MB only via it"], rows))


if __name__ == "__main__":
    main()

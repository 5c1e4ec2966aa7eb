"""The GitHub Actions workflow: a valid workflow that runs .ci/run against PostgreSQL on 5432, builds the image on
every run, and pushes it only for version tags, to the registry the repository variables name."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from tests.deploy_helpers import ROOT, WORKFLOW, dockerfile_stages, load_schema, load_yaml, schema_errors

FLOW = load_yaml(WORKFLOW)
ON_VERSION_TAG = "startsWith(github.ref, 'refs/tags/v')"


def steps(job: str) -> list[dict[str, Any]]:
    return FLOW["jobs"][job]["steps"]


def step_using(job: str, action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if step.get("uses", "").startswith(action + "@")]


def test_the_workflow_validates_against_the_github_workflow_schema():
    assert schema_errors(FLOW, load_schema("github-workflows.json")) == []


def test_it_runs_on_pushes_to_main_pull_requests_and_version_tags():
    assert FLOW["on"]["push"]["branches"] == ["main"]
    assert FLOW["on"]["push"]["tags"] == ["v*"]
    assert "pull_request" in FLOW["on"]


def test_the_test_job_runs_ci_run_against_a_postgres_service_on_5432():
    job = FLOW["jobs"]["test"]
    postgres = job["services"]["postgres"]
    assert "5432:5432" in postgres["ports"]
    assert "pg_isready" in postgres["options"]  # steps start only once it answers
    # The tests connect as postgres without a password (tests/conftest.py's ADMIN_URL default).
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "postgresql://postgres@127.0.0.1:5432/" in (ROOT / "tests" / "conftest.py").read_text()
    assert [step["run"] for step in steps("test") if "run" in step][-1] == "bash .ci/run"


def test_ci_uses_the_python_the_project_and_the_image_use():
    (setup,) = step_using("test", "actions/setup-python")
    version = setup["with"]["python-version"]
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"] == f">={version}"
    (argument,) = [i for i in dockerfile_stages()[""] if i.keyword == "ARG"]
    assert f"python:{version}-" in argument.arguments


def test_the_image_is_built_and_smoke_tested_on_every_run_but_pushed_only_for_version_tags():
    job = FLOW["jobs"]["image"]
    assert job["needs"] == "test"
    builds = step_using("image", "docker/build-push-action")
    assert [b for b in builds if not b["with"].get("push") and "if" not in b]  # the unconditional build
    pushes = [b for b in builds if b["with"].get("push")]
    assert pushes
    for step in [*pushes, *step_using("image", "docker/login-action")]:
        assert step["if"] == ON_VERSION_TAG
    smoke = next(step["run"] for step in steps("image") if step.get("name") == "Smoke test")
    assert "serve chat --help" in smoke


def test_the_registry_and_credentials_come_from_repository_variables_and_secrets():
    (login,) = step_using("image", "docker/login-action")
    assert login["with"]["registry"] == "${{ vars.REGISTRY }}"
    assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", login["with"]["username"])
    assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", login["with"]["password"])
    (meta,) = step_using("image", "docker/metadata-action")
    assert meta["with"]["images"] == "${{ vars.REGISTRY }}/${{ vars.IMAGE_NAME }}"
    for push in (b for b in step_using("image", "docker/build-push-action") if b["with"].get("push")):
        assert push["with"]["tags"] == "${{ steps.meta.outputs.tags }}"


def test_every_action_is_pinned_to_a_release():
    for job in FLOW["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]

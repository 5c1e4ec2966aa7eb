"""The oldest google-genai that pyproject.toml allows runs the Gemini adapter: installed alone into a throwaway venv
(the rest of the environment shared), it passes the adapter's and the whole turn's tests against the stand-in."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GEMINI_TESTS = ["tests/test_gemini.py", "tests/test_gemini_turns.py"]


def floor_version() -> str:
    """The lowest google-genai version the project's dependencies accept."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if re.match(r"google-genai\b", d)]
    found = re.search(r">=\s*([0-9][0-9.]*)", spec)
    assert found, f"google-genai has no lower bound in pyproject.toml: {spec!r}"
    return found[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_lowest_allowed_google_genai_runs_the_gemini_adapter(tmp_path):
    floor = floor_version()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"google-genai=={floor}"],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    version = subprocess.run(
        [python, "-c", "import google.genai; print(google.genai.__version__)"], capture_output=True, text=True
    )
    assert version.stdout.strip() in (floor, f"{floor}.0"), version.stderr

    tests = subprocess.run(
        [python, "-m", "pytest", *GEMINI_TESTS, "-q", "-x", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 't'}"],
        cwd=ROOT,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, f"google-genai {floor}:\n{tests.stdout[-5000:]}\n{tests.stderr[-2000:]}"

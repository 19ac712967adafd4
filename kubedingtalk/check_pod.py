"""``kubedingtalk check-pod``: the service's rules applied to pods a user pastes in."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from kubedingtalk.config import ConfigError, read_variable
from kubedingtalk.records import MalformedPod, from_pod, parse_time
from kubedingtalk.rules import RuleSettings, evaluate


class BadInput(ValueError):
    """The input is not what kubectl prints for pods."""


def _pods(document: Any) -> list[Any]:
    if not isinstance(document, dict):
        raise BadInput("expected a JSON object: a Pod, a PodList or a List")
    kind = document.get("kind")
    if kind == "Pod":
        return [document]
    if kind in ("PodList", "List"):
        items = document.get("items")
        if not isinstance(items, list):
            raise BadInput(f"a {kind} needs an items list")
        return [i for i in items if not isinstance(i, dict) or i.get("kind", "Pod") == "Pod"]
    raise BadInput(f"expected kind Pod, PodList or List, got {kind!r}")


def _since(epoch: float | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def run(path: str, now_text: str | None, environ: Mapping[str, str], out: TextIO = sys.stdout,
        err: TextIO = sys.stderr) -> int:
    try:
        now = parse_time(now_text) if now_text else None
    except MalformedPod:
        print(f"kubedingtalk check-pod: --now {now_text!r}: expected an RFC 3339 time such as "
              "2026-01-02T15:04:05Z", file=err)
        return 2
    try:
        min_ms = read_variable(environ, "NOT_READY_MIN_TIME")
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
        items = _pods(json.loads(text))
        records = [from_pod(item) for item in items]
    except ConfigError as exc:
        print(f"kubedingtalk check-pod: {exc.problems[0]}", file=err)
        return 2
    except MalformedPod as exc:
        print(f"kubedingtalk check-pod: not a pod this tool can read: {exc}", file=err)
        return 2
    except (OSError, json.JSONDecodeError, BadInput) as exc:
        print(f"kubedingtalk check-pod: {path}: {exc}", file=err)
        return 2
    settings = RuleSettings(not_ready_min_time=min_ms / 1000)
    for record in records:
        for f in evaluate(record, time.time() if now is None else now, settings):
            print(json.dumps({"namespace": f.namespace, "pod": f.pod, "container": f.container, "reason": f.reason,
                              "message": f.message, "since": _since(f.since), "kind": f.kind,
                              "workload": f"{f.workload_kind}/{f.workload_name}", "exit_code": f.exit_code,
                              "restart_count": f.restart_count}), file=out)
    return 0

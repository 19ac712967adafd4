"""``kubedingtalk demo``: the real service against the embedded emulators, no cluster or network needed.

It starts both emulators, runs the same pipeline ``kubedingtalk run`` runs
(informers, scanner, sender, real sockets, signed requests), plays the
scenario into the Kubernetes emulator step by step, and prints each message
as the DingTalk group receives it. Only ``NOT_READY_MIN_TIME`` is shortened,
so the unschedulable pod is announced within the demo rather than after a
minute.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from functools import partial
from pathlib import Path
from typing import TextIO

from kubedingtalk import log
from kubedingtalk.config import Settings
from kubedingtalk.service import Pipeline, Service, build
from kubedingtalk.testing.dingtalk import DingTalkServer, Message, Robot
from kubedingtalk.testing.kube_api import KubeApiServer
from kubedingtalk.testing.scenario import INITIAL, STEPS
from kubedingtalk.testing.waiting import poll

TOKEN, SECRET, KEYWORD = "demo-robot-token", "SECdemo0123456789", "k8s"
STEP_TIMEOUT = 15.0


def _delivered(pipeline: Pipeline, robot: DingTalkServer, count: int) -> bool:
    """Every change evaluated, nothing left to send, and the group has ``count`` messages."""
    return pipeline.scanner.caught_up and pipeline.sender.queued == 0 and len(robot.messages) >= count


def _show(message: Message, out: TextIO) -> None:
    body = "\n".join(f"  │ {line}" for line in message.text.replace("\n\n", "\n").splitlines())
    print(f"\n  ┌ {message.title}\n{body}", file=out, flush=True)


def run(out: TextIO = sys.stdout) -> int:
    log.configure("error", "console", (), stream=sys.stderr)  # the group's view; only the service's problems
    with tempfile.TemporaryDirectory() as tmp, KubeApiServer() as kube, \
            DingTalkServer([Robot(TOKEN, secret=SECRET, keywords=(KEYWORD,))]) as robot:
        env = {"KUBE_USE_KUBECONFIG": "true", "KUBECONFIG": str(kube.write_kubeconfig(Path(tmp) / "kubeconfig")),
               "DINGTALK_TOKEN": robot.webhook_url(TOKEN), "DINGTALK_SECRET": SECRET, "DINGTALK_KEYWORD": KEYWORD,
               "CLUSTER_NAME": "demo", "NOT_READY_MIN_TIME": "3000"}
        for ns in ("shop", "batch"):
            kube.ensure_namespace(ns)
        for obj in INITIAL:
            kube.apply(obj)
        pipeline = build(Settings.from_env(env), env)
        service = Service(pipeline.components)
        thread = threading.Thread(target=service.run, name="demo-service")
        print(f"Kubernetes API emulator on {kube.url}; DingTalk robot emulator on {robot.url}", file=out)
        print("Running kube-dingtalk against them (NOT_READY_MIN_TIME=3000, other settings default).", file=out)
        robot.on_message = lambda message: _show(message, out)
        thread.start()
        ok = bool(poll(lambda: all(i.health.synced for i in pipeline.informers), STEP_TIMEOUT))
        expected = 0
        for number, step in enumerate(STEPS, 1):
            print(f"\n{number}. {step.title}", file=out, flush=True)
            step.play(kube)
            expected += step.messages
            arrived = bool(poll(partial(_delivered, pipeline, robot, expected), STEP_TIMEOUT))
            ok = ok and arrived
        service.stop()
        thread.join(30)
        print(f"\nMessages the DingTalk group received: {len(robot.messages)} (expected {expected}); "
              f"robot answers: {dict(robot.answers)}", file=out)
        return 0 if ok and len(robot.messages) == expected else 1

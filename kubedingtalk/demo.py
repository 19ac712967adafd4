"""``kubedingtalk demo``: the embedded emulators and the scenario, no cluster or network needed.

The demo shows only what really happens. Until the pipeline (informers,
scanner, sender) exists, it plays the scenario into the Kubernetes emulator,
shows the cluster as ``kubectl get pods -A`` would, and says plainly that no
DingTalk message is produced yet.
"""

from __future__ import annotations

import sys
from typing import TextIO

from kubedingtalk.testing.dingtalk import DingTalkServer, Robot
from kubedingtalk.testing.kube_api import KubeApiServer, pod_status_text
from kubedingtalk.testing.kube_store import PODS
from kubedingtalk.testing.scenario import STEPS


def _pod_table(kube: KubeApiServer) -> str:
    rows = [("NAMESPACE", "NAME", "STATUS", "RESTARTS")]
    for pod in sorted(kube.store.objects(PODS), key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
        restarts = sum(int(c.get("restartCount", 0)) for c in pod["status"].get("containerStatuses") or [])
        rows.append((pod["metadata"]["namespace"], pod["metadata"]["name"], pod_status_text(pod), str(restarts)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def run(out: TextIO = sys.stdout) -> int:
    with KubeApiServer() as kube, DingTalkServer([Robot("demo-token", secret="SECdemo")]) as robot:
        print(f"Kubernetes API emulator on {kube.url}; DingTalk robot emulator on {robot.url}", file=out)
        for number, step in enumerate(STEPS, 1):
            step.play(kube)
            print(f"  {number}. {step.title}", file=out)
        print("\nThe cluster now shows (kubectl get pods -A):\n", file=out)
        print(_pod_table(kube), file=out)
        print("\nMessages the DingTalk group received:", len(robot.messages), file=out)
        print("kube-dingtalk's pipeline (informers, scanner, sender) is not built yet, so nothing watches this "
              "cluster and no alert is sent. The demo will run the real service here once it exists.", file=out)
    return 0

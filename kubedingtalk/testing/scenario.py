"""The demo's story, as pod states written into the Kubernetes emulator step by step.

Each step is what a person would do to a cluster (deploy a bad image, roll out
a healthy version...) expressed as the objects the kubelet would then report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubedingtalk.testing import pods
from kubedingtalk.testing.kube_api import KubeApiServer


@dataclass(frozen=True)
class Step:
    title: str
    play: Callable[[KubeApiServer], None]


def _apply(*objs: pods.Obj) -> Callable[[KubeApiServer], None]:
    def play(kube: KubeApiServer) -> None:
        for obj in objs:
            kube.apply(obj)

    return play


def _rollout(kube: KubeApiServer) -> None:
    old = pods.pod("api", namespace="shop", labels={"version": "1"})
    new = pods.pod("api-7c9d5b8f4d-q2w3e", workload="api", namespace="shop", labels={"version": "2"})
    kube.apply(old)
    kube.apply(pods.terminating(old))
    kube.apply(new)
    kube.delete("Pod", "shop", old["metadata"]["name"])


CHECKOUT = pods.pod("checkout", namespace="shop")

STEPS: tuple[Step, ...] = (
    Step("A deployment with a bad image tag", _apply(pods.err_image_pull(pods.pod("frontend", namespace="shop")))),
    Step("A worker crash-looping on start", _apply(pods.crash_loop(CHECKOUT, exit_code=1, restarts=5))),
    Step("A cache killed for using too much memory", _apply(
        pods.oom_killed(pods.pod("redis", namespace="shop", owner="StatefulSet"), restarts=1))),
    Step("A batch job asking for more CPU than any node has", _apply(
        pods.unschedulable(pods.pod("report", namespace="batch", owner="Job")))),
    Step("A healthy rolling update (no alert expected)", _rollout),
    Step("The crash-looping worker is fixed", _apply(pods.healthy(pods.crash_loop(CHECKOUT, restarts=5)))),
)

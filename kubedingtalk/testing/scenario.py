"""The demo's story, as pod states written into the Kubernetes emulator step by step.

Each step is what a person would do to a cluster (deploy a bad image, roll out
a healthy version...) expressed as the objects the kubelet would then report,
with the number of messages the group should receive for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubedingtalk.testing import pods
from kubedingtalk.testing.kube_api import KubeApiServer


@dataclass(frozen=True)
class Step:
    """What a person does, and how many messages the group should get for it."""

    title: str
    play: Callable[[KubeApiServer], None]
    messages: int = 1


def _apply(*makers: Callable[[], pods.Obj]) -> Callable[[KubeApiServer], None]:
    """Objects built when the step plays, so their timestamps are the moment it happens."""

    def play(kube: KubeApiServer) -> None:
        for make in makers:
            kube.apply(make())

    return play


def _rollout(kube: KubeApiServer) -> None:
    old = pods.pod("api", namespace="shop", labels={"version": "1"})
    new = pods.pod("api-7c9d5b8f4d-q2w3e", workload="api", namespace="shop", labels={"version": "2"})
    kube.apply(old)
    kube.apply(pods.terminating(old))
    kube.apply(new)
    kube.delete("Pod", "shop", old["metadata"]["name"])


CHECKOUT = pods.pod("checkout", namespace="shop")

REDIS = pods.pod("redis", namespace="shop", owner="StatefulSet")
# The cluster before the story starts: running, healthy workloads.
INITIAL: tuple[pods.Obj, ...] = (REDIS, CHECKOUT)

STEPS: tuple[Step, ...] = (
    Step("A deployment with a bad image tag",
         _apply(lambda: pods.err_image_pull(pods.pod("frontend", namespace="shop")))),
    Step("A worker crash-looping on start", _apply(lambda: pods.crash_loop(CHECKOUT, exit_code=1, restarts=5))),
    Step("A cache killed for using too much memory", _apply(lambda: pods.oom_killed(REDIS, restarts=1))),
    Step("A batch job asking for more CPU than any node has",
         _apply(lambda: pods.unschedulable(pods.pod("report", namespace="batch", owner="Job")))),
    Step("A healthy rolling update (no alert expected)", _rollout, messages=0),
    Step("The crash-looping worker is fixed",
         _apply(lambda: pods.healthy(pods.crash_loop(CHECKOUT, restarts=5)))),
)

"""The demo runs the real service against the emulators and shows what the group receives."""

from __future__ import annotations

import io

from kubedingtalk import demo


def test_demo_shows_each_failure_once_and_the_recovery_and_nothing_for_the_rollout() -> None:
    out = io.StringIO()
    assert demo.run(out) == 0
    text = out.getvalue()
    titles = [line.removeprefix("  ┌ ") for line in text.splitlines() if line.startswith("  ┌ ")]
    assert titles == [
        "k8s 🔴 ErrImagePull in shop/frontend",
        "k8s 🔴 CrashLoopBackOff in shop/checkout",
        "k8s 🔴 OOMKilled in shop/redis",
        "k8s 🔴 Unschedulable in batch/report",
        "k8s ✅ Recovered: CrashLoopBackOff in shop/checkout",
    ]
    assert "shop/api" not in text
    assert "Messages the DingTalk group received: 5 (expected 5); robot answers: {0: 5}" in text

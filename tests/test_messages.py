"""Rendering: what a phone shows first, keyword and mentions always present, never over the size limit."""

from __future__ import annotations

import json

from kubedingtalk.ledger import Announcement, IncidentKey
from kubedingtalk.messages import MAX_BODY_BYTES, Renderer, duration, safe
from kubedingtalk.rules import Finding

R = Renderer(cluster="prod-eu", keyword="k8s", at_mobiles=("13800000000",), at_user_ids=("ops-lead",))


def announce(state: str = "firing", pods: int = 1, message: str = "Back-off pulling image \"app:v2\"",
             workload: str = "web", reason: str = "ImagePullBackOff", mobiles: tuple[str, ...] = (),
             flaps: int = 0) -> Announcement:
    f = Finding("shop", f"{workload}-abc-0", "Deployment", workload, "waiting", reason, message, container="app",
                since=1000.0, restart_count=3, exit_code=1, node="node-7", at_mobiles=mobiles,
                exit_reason="Error")
    key = IncidentKey.of(f)
    return Announcement(state, key, f, tuple(f"{workload}-abc-{i}" for i in range(pods)), 1000.0, 1130.0, flaps)


def test_firing_message_puts_what_failed_where_first() -> None:
    msg = R.render(announce(pods=3))
    assert msg.title == "k8s 🔴 ImagePullBackOff in shop/web"
    lines = msg.text.split("\n\n")
    assert lines[0] == "### 🔴 ImagePullBackOff · shop/web"
    assert "**Pods (3):** web-abc-0, web-abc-1, web-abc-2" in lines
    assert "**Container:** app" in lines and "**Node:** node-7" in lines
    assert "**Restarts:** 3 · **Last exit:** 1 (Error)" in lines
    assert "**Failing for:** 2m 10s" in lines
    assert '> Back-off pulling image "app:v2"' in lines
    assert "k8s · cluster prod-eu" in lines


def test_mentions_are_in_at_and_in_the_text_including_per_workload_ones() -> None:
    msg = R.render(announce(mobiles=("13900000000",)))
    payload = msg.payload()
    assert payload["at"]["atMobiles"] == ["13800000000", "13900000000"]
    assert payload["at"]["atUserIds"] == ["ops-lead"]
    assert msg.text.endswith("@13800000000 @13900000000 @ops-lead")


def test_resolved_message_says_what_recovered_and_after_how_long() -> None:
    msg = R.render(announce("resolved", pods=2))
    assert msg.title == "k8s ✅ Recovered: ImagePullBackOff in shop/web"
    assert "is healthy again after **2m 10s**" in msg.text and "web-abc-1" in msg.text


def test_more_than_ten_pods_are_summarised() -> None:
    msg = R.render(announce(pods=25))
    assert "**Pods (25):** web-abc-0, " in msg.text and "web-abc-9 and 15 more" in msg.text
    assert "web-abc-10" not in msg.text


def test_cluster_text_cannot_reshape_the_markdown() -> None:
    assert safe("line one\n### heading *bold* [link](x) `code` <b>") == \
        r"line one \#\#\# heading \*bold\* \[link\](x) \`code\` \<b\>"
    assert len(safe("x" * 5000)) == 400


def test_flaps_are_shown() -> None:
    assert "**Flapped:** 2 times since the last message" in R.render(announce(flaps=2)).text


def test_huge_content_is_trimmed_on_character_boundaries_keeping_keyword_and_mentions() -> None:
    tiny = Renderer(cluster="c", keyword="k8s", at_mobiles=("13800000000",), limit=700)
    msg = tiny.render(announce(message="镜像拉取失败" * 500, pods=3))
    body = msg.body()
    assert len(body) <= 700
    json.loads(body.decode("utf-8"))  # valid UTF-8 and JSON after trimming
    assert "(trimmed to fit" in msg.text and msg.text.endswith("@13800000000") and "k8s · cluster c" in msg.text


def test_a_digest_names_every_incident_within_the_limit() -> None:
    items = [announce(workload=f"svc-{i:03d}", pods=12) for i in range(500)]
    digests = R.digest(items)
    assert all(len(m.body()) <= MAX_BODY_BYTES for m in digests)
    assert sum(len(m.announcements) for m in digests) == 500
    text = "\n".join(m.text for m in digests)
    assert all(f"shop/svc-{i:03d}" in text for i in range(500))
    assert len(digests) <= 6
    assert digests[0].title.startswith("k8s 🔴 ") and "failing in prod-eu" in digests[0].title
    assert all("@13800000000" in m.text and "k8s" in m.text for m in digests)


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (5, 130, 7500, 200_000)] == ["5s", "2m 10s", "2h 5m", "2d 7h"]

"""Announcements rendered as DingTalk markdown: the most important first, always within the size limit.

People read these on a phone, in a notification preview first: the title says
what failed where; the first lines say which workload and why; details
follow. DingTalk's markdown renders a subset (headings, bold, quotes, lists,
no tables) and treats a single newline as a space, so lines are separated by
blank lines. Text from the cluster is untrusted: it is flattened to one line,
trimmed, and its markdown characters escaped so it cannot reshape the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubedingtalk.ledger import Announcement

MAX_BODY_BYTES = 19_000
MAX_PODS_LISTED = 10
MAX_K8S_MESSAGE = 400
TRIMMED = "\n\n…(trimmed to fit DingTalk's size limit)"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def safe(text: str, limit: int = MAX_K8S_MESSAGE) -> str:
    """Untrusted text made inert: one line, markdown escaped, at most ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def duration(seconds: float) -> str:
    """Human durations: 45s, 3m 20s, 2h 5m, 3d 4h."""
    s = int(max(0, seconds))
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def pod_list(pods: Sequence[str], limit: int = MAX_PODS_LISTED) -> str:
    shown = ", ".join(safe(p, 253) for p in pods[:limit])
    return shown + (f" and {len(pods) - limit} more" if len(pods) > limit else "")


@dataclass(frozen=True)
class Message:
    """One robot message, ready to post; ``incidents`` names what it carries, for logs."""

    title: str
    text: str
    at_mobiles: tuple[str, ...] = ()
    at_user_ids: tuple[str, ...] = ()
    incidents: tuple[str, ...] = ()
    announcements: tuple[Announcement, ...] = field(default=(), repr=False, compare=False)

    def payload(self) -> dict[str, Any]:
        return {"msgtype": "markdown", "markdown": {"title": self.title, "text": self.text},
                "at": {"atMobiles": list(self.at_mobiles), "atUserIds": list(self.at_user_ids), "isAtAll": False}}

    def body(self) -> bytes:
        return json.dumps(self.payload(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def incident_name(a: Announcement) -> str:
    return f"{a.state} {a.key.reason} {a.key.namespace}/{a.key.workload_kind}/{a.key.workload_name}"


@dataclass(frozen=True)
class Renderer:
    """Renders announcements with the deployment's cluster name, keyword and mentions."""

    cluster: str = "kubernetes"
    keyword: str = ""
    at_mobiles: tuple[str, ...] = ()
    at_user_ids: tuple[str, ...] = ()
    limit: int = MAX_BODY_BYTES

    def _mentions(self, items: Sequence[Announcement]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        mobiles = list(self.at_mobiles)
        for a in items:
            mobiles.extend(m for m in a.finding.at_mobiles if m not in mobiles)
        return tuple(dict.fromkeys(mobiles)), self.at_user_ids

    def _footer(self, mobiles: Sequence[str], users: Sequence[str]) -> str:
        parts = [f"{self.keyword} · " if self.keyword else "", f"cluster {safe(self.cluster, 100)}"]
        mentions = " ".join(f"@{m}" for m in (*mobiles, *users))
        return "\n\n" + "".join(parts) + (f"\n\n{mentions}" if mentions else "")

    def _title(self, text: str) -> str:
        return f"{self.keyword} {text}" if self.keyword else text

    def _fit(self, title: str, body: str, footer: str, mobiles: tuple[str, ...], users: tuple[str, ...],
             items: Sequence[Announcement]) -> Message:
        """Trim the body (never the keyword or mentions in the footer) until the request fits."""
        names = tuple(incident_name(a) for a in items)
        msg = Message(title, body + footer, mobiles, users, names, tuple(items))
        size = len(msg.body())
        if size <= self.limit:
            return msg
        keep = len(body)
        while keep > 0:
            keep = max(0, keep - max(1, (size - self.limit) // 3 + 1))  # a UTF-8 character is at most 3 bytes here
            msg = Message(title, body[:keep] + TRIMMED + footer, mobiles, users, names, tuple(items))
            size = len(msg.body())
            if size <= self.limit:
                return msg
        return msg

    def render(self, a: Announcement) -> Message:
        """One announcement as its own message."""
        f, key = a.finding, a.key
        where = f"{safe(key.namespace, 63)}/{safe(key.workload_name, 253)}"
        mobiles, users = self._mentions([a])
        if a.state == "resolved":
            title = self._title(f"✅ Recovered: {f.reason} in {key.namespace}/{key.workload_name}")
            lines = [f"### ✅ Recovered: {safe(f.reason, 100)} · {where}",
                     f"**{key.workload_kind} {where}** is healthy again after **{duration(a.duration)}**.",
                     f"**Pods:** {pod_list(a.pods)}"]
        else:
            title = self._title(f"🔴 {f.reason} in {key.namespace}/{key.workload_name}")
            lines = [f"### 🔴 {safe(f.reason, 100)} · {where}",
                     f"**Workload:** {key.workload_kind} {where}",
                     f"**Pods ({len(a.pods)}):** {pod_list(a.pods)}"]
            if f.container:
                lines.append(f"**Container:** {safe(f.container, 253)}{' (init)' if f.init else ''}")
            if f.message:
                lines.append(f"> {safe(f.message)}")
            facts = []
            if f.restart_count:
                facts.append(f"**Restarts:** {f.restart_count}")
            if f.exit_code is not None:
                reason = f" ({safe(f.exit_reason, 60)})" if f.exit_reason else ""
                facts.append(f"**Last exit:** {f.exit_code}{reason}")
            if facts:
                lines.append(" · ".join(facts))
            if f.node:
                lines.append(f"**Node:** {safe(f.node, 253)}")
            lines.append(f"**Failing for:** {duration(a.at - (f.since or a.started))}")
            if a.flaps:
                lines.append(f"**Flapped:** {a.flaps} time{'s' if a.flaps > 1 else ''} since the last message")
        return self._fit(title, "\n\n".join(lines), self._footer(mobiles, users), mobiles, users, [a])

    def _digest_line(self, a: Announcement) -> str:
        key, where = a.key, f"{safe(a.key.namespace, 63)}/{safe(a.key.workload_name, 253)}"
        if a.state == "resolved":
            return (f"- ✅ **{safe(key.reason, 100)}** {key.workload_kind} {where} recovered after "
                    f"{duration(a.duration)}")
        extra = f" · flapped {a.flaps} times" if a.flaps else ""
        return (f"- 🔴 **{safe(a.finding.reason, 100)}** {key.workload_kind} {where}: "
                f"{pod_list(a.pods, 3)}{extra}")

    def digest(self, items: Sequence[Announcement]) -> list[Message]:
        """Many announcements merged into as few messages as the size limit allows, none left out."""
        return list(self.digests(items))

    def digests(self, items: Sequence[Announcement]) -> Iterator[Message]:
        """``digest``, one message at a time: a sender that can post only the first renders only it."""
        batch: list[Announcement] = []
        estimate = 0
        for a in items:
            line = len(json.dumps(self._digest_line(a), ensure_ascii=False).encode("utf-8"))
            # Exact sizing (rendering the whole batch) only once the estimate nears the limit.
            if batch and estimate + line > self.limit - 1500 and self._untrimmed_size([*batch, a]) > self.limit:
                yield self._digest(batch)
                batch, estimate = [], 0
            batch.append(a)
            estimate += line
        if batch:
            yield self._digest(batch)

    def _digest_parts(self, items: Sequence[Announcement]) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
        firing = sum(1 for a in items if a.state == "firing")
        resolved = len(items) - firing
        counts = ", ".join(p for p in (f"{firing} failing" if firing else "",
                                         f"{resolved} recovered" if resolved else "") if p)
        title = self._title(f"{'🔴' if firing else '✅'} {counts} in {self.cluster}")
        body = "\n\n".join([f"### {'🔴' if firing else '✅'} {counts} in cluster {safe(self.cluster, 100)}",
                             "\n".join(self._digest_line(a) for a in items)])
        mobiles, users = self._mentions(items)
        return title, body, mobiles, users

    def _untrimmed_size(self, items: Sequence[Announcement]) -> int:
        if len(items) == 1:
            return len(self.render(items[0]).body())
        title, body, mobiles, users = self._digest_parts(items)
        return len(Message(title, body + self._footer(mobiles, users), mobiles, users).body())

    def _digest(self, items: Sequence[Announcement]) -> Message:
        if len(items) == 1:
            return self.render(items[0])
        title, body, mobiles, users = self._digest_parts(items)
        return self._fit(title, body, self._footer(mobiles, users), mobiles, users, items)

    def test_message(self) -> Message:
        """What ``send-test`` posts: proof the robot, secret and keyword work."""
        mobiles, users = self.at_mobiles, self.at_user_ids
        body = ("### ✅ kube-dingtalk test message\n\nThe robot, its signature and keyword settings work. "
                "Failing pods will be announced here.")
        return self._fit(self._title(f"kube-dingtalk test for {self.cluster}"), body,
                         self._footer(mobiles, users), mobiles, users, [])

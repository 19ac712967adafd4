"""The DingTalk robot client: one signed POST, its answer classified. No retries, no policy.

The sender decides what to do with each class of answer; this module only
speaks the protocol: sign every request with the current time, post JSON,
read ``errcode`` (HTTP 200 with errcode 0 is the only success), and name the
setting to check when DingTalk says the configuration is wrong. The webhook
URL is a credential: it never appears in ``repr``, errors or logs.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import urllib3

from kubedingtalk import __version__, log
from kubedingtalk.config import Secret
from kubedingtalk.signing import signed_url

# Answer classes, each with the sender's response (see ../shared/reference/dingtalk-robot.md).
OK, RETRY, THROTTLED, TOO_LARGE, REJECTED, CONFIG = "ok", "retry", "throttled", "too_large", "rejected", "config"

_CLASSES: dict[int, str] = {0: OK, -1: RETRY, 130101: THROTTLED, 410100: THROTTLED, 460101: TOO_LARGE,
                            101002: TOO_LARGE, 430101: REJECTED, 430102: REJECTED, 430103: REJECTED,
                            430104: REJECTED}
_HINTS = (
    ("sign not match", "the signature was rejected: check DINGTALK_SECRET (the robot's SEC... secret)"),
    ("timestamp", "the signature's timestamp was rejected: check this machine's clock (NTP)"),
    ("keywords not in content", "no keyword in the message: set DINGTALK_KEYWORD to one of the robot's keywords"),
    ("ip", "this address is not in the robot's IP allow-list: check the robot's security settings"),
)
_CODE_HINTS = {
    300001: "the access token does not exist: check DINGTALK_TOKEN",
    300005: "the access token does not exist: check DINGTALK_TOKEN",
    400101: "the access token does not exist: check DINGTALK_TOKEN",
    400013: "the group was disbanded: create a robot in an existing group and update DINGTALK_TOKEN",
    400102: "the robot is disabled: enable it in the group's settings",
    400106: "the robot is not in the group: add it back or update DINGTALK_TOKEN",
    40035: "the request had no access token: check DINGTALK_TOKEN",
    43002: "the request was not a POST: a bug in kube-dingtalk, please report it",
    400105: "DingTalk does not accept this message type: a bug in kube-dingtalk, please report it",
}


@dataclass(frozen=True)
class Answer:
    """What came back: the class decides the sender's next step; ``hint`` says what to fix."""

    outcome: str
    errcode: int | None
    errmsg: str
    http_status: int | None = None
    hint: str = ""


def classify(http_status: int, errcode: int | None, errmsg: str) -> Answer:
    if http_status >= 500 or http_status in (408, 429):
        return Answer(RETRY, errcode, errmsg, http_status)
    if http_status != 200 or errcode is None:
        return Answer(CONFIG, errcode, errmsg, http_status,
                      f"unexpected HTTP {http_status} from the robot endpoint: check DINGTALK_TOKEN's URL")
    outcome = _CLASSES.get(errcode)
    if outcome is not None:
        hint = "DingTalk rejected the content" if outcome == REJECTED else ""
        return Answer(outcome, errcode, errmsg, http_status, hint)
    hint = _CODE_HINTS.get(errcode, "")
    if not hint and errcode == 310000:
        lowered = errmsg.lower()
        hint = next((h for needle, h in _HINTS if needle in lowered), "check DINGTALK_SECRET, DINGTALK_KEYWORD, "
                    "the robot's IP allow-list and this machine's clock")
    return Answer(CONFIG, errcode, errmsg, http_status, hint or "DingTalk refused the request: check the settings")


def _proxy_for(url: str, environ: Mapping[str, str]) -> str | None:
    """``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` covers the host (the standard library's rules)."""
    parts = urllib.parse.urlsplit(url)
    names = {k.lower(): v for k, v in environ.items() if k.lower().endswith("_proxy") and v}
    no_proxy = names.get("no_proxy", "")
    if no_proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            parts.hostname or "", {"no": no_proxy}):
        return None
    return names.get(f"{parts.scheme}_proxy")


class DingTalkClient:
    """Posts JSON bodies to one robot; thread-compatible (the sender is its only user)."""

    def __init__(self, webhook_url: Secret, secret: Secret | None = None, *, timeout: float = 10.0,
                 environ: Mapping[str, str] = os.environ, clock: Callable[[], float] = time.time) -> None:
        self._url, self._secret, self._clock = webhook_url, secret, clock
        proxy = _proxy_for(webhook_url.reveal(), environ)
        self._timeout = urllib3.Timeout(connect=min(5.0, timeout), read=timeout)
        headers = {"User-Agent": f"kube-dingtalk/{__version__}"}
        self._pool: urllib3.PoolManager = (urllib3.ProxyManager(proxy, headers=headers) if proxy
                                           else urllib3.PoolManager(headers=headers))
        self.proxied = proxy is not None

    def __repr__(self) -> str:
        return f"DingTalkClient(url='***', signed={self._secret is not None}, proxied={self.proxied})"

    def _url_now(self) -> str:
        url = self._url.reveal()
        if self._secret:
            url = signed_url(url, self._secret.reveal(), int(self._clock() * 1000))
        return url

    def post(self, body: bytes) -> Answer:
        """One attempt. Transport failures come back as a RETRY answer, never as an exception with the URL."""
        try:
            resp = self._pool.request("POST", self._url_now(), body=body, timeout=self._timeout, retries=False,
                                      headers={"Content-Type": "application/json; charset=utf-8"})
        except (urllib3.exceptions.HTTPError, OSError) as err:
            return Answer(RETRY, None, log.redactor.scrub(f"{type(err).__name__}: {err}"), None)
        try:
            data = json.loads(resp.data)
            errcode = data.get("errcode") if isinstance(data, dict) else None
            errmsg = str(data.get("errmsg", "")) if isinstance(data, dict) else ""
        except ValueError:
            errcode, errmsg = None, resp.data[:200].decode("utf-8", "replace")
        return classify(resp.status, errcode if isinstance(errcode, int) else None, errmsg)

"""The DingTalk robot emulator over real HTTP: every errcode the sender must handle."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import urllib3

from kubedingtalk.signing import signed_url
from kubedingtalk.testing.dingtalk import DingTalkServer, Robot, shape_error

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=5))
MD = {"msgtype": "markdown", "markdown": {"title": "t", "text": "hello k8s"}}


def post(url: str, body: Any = MD, method: str = "POST", raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    resp = HTTP.request(method, url, body=data, headers={"Content-Type": "application/json; charset=utf-8"})
    return resp.status, json.loads(resp.data) if resp.status == 200 else {}


def test_accepts_a_message_and_keeps_it(dingtalk: DingTalkServer) -> None:
    body = {**MD, "at": {"atMobiles": ["13800000000"], "isAtAll": False}}
    assert post(dingtalk.webhook_url("test-token"), body) == (200, {"errcode": 0, "errmsg": "ok"})
    [msg] = dingtalk.messages
    assert (msg.token, msg.msgtype, msg.title, msg.text, msg.at_mobiles) == (
        "test-token", "markdown", "t", "hello k8s", ["13800000000"])
    assert "hello k8s" in dingtalk.transcript()


@pytest.mark.parametrize(("path", "errcode"), [
    ("/robot/send", 40035), ("/robot/send?access_token=", 40035), ("/robot/send?access_token=nope", 300001),
])
def test_token_errors(dingtalk: DingTalkServer, path: str, errcode: int) -> None:
    assert post(dingtalk.url + path)[1]["errcode"] == errcode
    assert dingtalk.messages == []


def test_only_post(dingtalk: DingTalkServer) -> None:
    assert post(dingtalk.webhook_url("test-token"), method="GET")[1]["errcode"] == 43002


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", json.dumps({"msgtype": "video", "video": {}}).encode(),
                                 json.dumps({"msgtype": "text"}).encode()])
def test_bad_json_or_unknown_type_is_400105(dingtalk: DingTalkServer, raw: bytes) -> None:
    assert post(dingtalk.webhook_url("test-token"), raw=raw)[1]["errcode"] == 400105


def test_signature_checked(dingtalk: DingTalkServer) -> None:
    base = dingtalk.webhook_url("signed")
    now = int(time.time() * 1000)
    assert post(signed_url(base, "SECtest", now))[1]["errcode"] == 0
    assert post(signed_url(base, "SECwrong", now))[1] == {"errcode": 310000, "errmsg": post(
        signed_url(base, "SECwrong", now))[1]["errmsg"]}
    assert "sign not match" in post(signed_url(base, "SECwrong", now))[1]["errmsg"]
    assert "sign not match" in post(base)[1]["errmsg"], "a signed robot rejects unsigned requests"
    old = now - 3_700_000
    assert post(signed_url(base, "SECtest", old))[1] == {"errcode": 310000, "errmsg": "invalid timestamp"}
    double = base + f"&timestamp={now}&sign=" + signed_url(base, "SECtest", now).rsplit("sign=", 1)[1].replace(
        "%", "%25")
    assert post(double)[1]["errcode"] == 310000, "double URL-encoding is 'sign not match'"
    assert len(dingtalk.messages) == 1


def test_keywords_required(dingtalk: DingTalkServer) -> None:
    url = dingtalk.webhook_url("keyworded")
    assert "keywords not in content" in post(url, {"msgtype": "text", "text": {"content": "no word"}})[1]["errmsg"]
    assert post(url, {"msgtype": "text", "text": {"content": "a k8s alert"}})[1]["errcode"] == 0
    assert post(url, {"msgtype": "markdown", "markdown": {"title": "k8s", "text": "x"}})[1]["errcode"] == 0


def test_body_over_20000_bytes_is_460101(dingtalk: DingTalkServer) -> None:
    url = dingtalk.webhook_url("test-token")
    text = "警" * 6700  # 3 bytes each in UTF-8: just over the limit with the envelope
    assert post(url, {"msgtype": "text", "text": {"content": text}})[1]["errcode"] == 460101
    assert post(url, {"msgtype": "text", "text": {"content": text[:6000]}})[1]["errcode"] == 0


def test_twenty_per_minute_then_throttled_for_the_penalty() -> None:
    now = [1000.0]
    with DingTalkServer([Robot("t")], penalty=600, clock=lambda: now[0]) as server:
        url = server.webhook_url("t")
        assert [post(url)[1]["errcode"] for _ in range(20)] == [0] * 20
        assert post(url)[1]["errcode"] == 130101
        assert server.throttled("t")
        now[0] += 61
        assert post(url)[1]["errcode"] == 130101, "the penalty outlasts the window"
        now[0] += 600
        assert post(url)[1]["errcode"] == 0
        assert len(server.messages) == 21 and server.answers[130101] == 2


def test_sliding_window_allows_steady_rate() -> None:
    now = [0.0]
    with DingTalkServer([Robot("t")], clock=lambda: now[0]) as server:
        for _ in range(60):
            assert post(server.webhook_url("t"))[1]["errcode"] == 0
            now[0] += 3.0
        assert server.answers == {0: 60}


def test_faults_errcode_http_status_delay_and_drop(dingtalk: DingTalkServer) -> None:
    url = dingtalk.webhook_url("test-token")
    dingtalk.fail_next(2, errcode=-1)
    assert [post(url)[1]["errcode"] for _ in range(3)] == [-1, -1, 0]
    dingtalk.fail_next(1, http_status=502)
    assert post(url)[0] == 502
    dingtalk.fail_next(1, delay=0.5)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        HTTP.request("POST", url, body=json.dumps(MD), timeout=urllib3.Timeout(read=0.1))
    dingtalk.fail_next(1, drop=True)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        HTTP.request("POST", url, body=json.dumps(MD))
    assert post(url)[1]["errcode"] == 0
    assert len(dingtalk.wait_for_messages(3)) == 3, "the slow request still lands: a retry may duplicate it"


def test_wait_for_messages_times_out_with_what_arrived(dingtalk: DingTalkServer) -> None:
    post(dingtalk.webhook_url("test-token"))
    assert len(dingtalk.wait_for_messages(1, timeout=1)) == 1
    with pytest.raises(AssertionError, match="expected 2 messages"):
        dingtalk.wait_for_messages(2, timeout=0.1)


@pytest.mark.parametrize(("body", "problem"), [
    ({"msgtype": "text", "text": {"content": "x"}}, None),
    ({"msgtype": "text", "text": {"content": ""}}, "text.content"),
    ({"msgtype": "markdown", "markdown": {"text": "x"}}, "markdown.title"),
    ({"msgtype": "link", "link": {"title": "a", "text": "b", "messageUrl": "http://x"}}, None),
    ({"msgtype": "link", "link": {"title": "a", "text": "b"}}, "link.messageUrl"),
    ({"msgtype": "actionCard", "actionCard": {"title": "a", "text": "b", "singleTitle": "c", "singleURL": "u"}},
     None),
    ({"msgtype": "actionCard", "actionCard": {"title": "a", "text": "b", "btns": [{"title": "c",
                                                                                    "actionURL": "u"}]}}, None),
    ({"msgtype": "actionCard", "actionCard": {"title": "a", "text": "b"}}, "actionCard.singleTitle"),
    ({"msgtype": "feedCard", "feedCard": {"links": [{"title": "a", "messageURL": "u", "picURL": "p"}]}}, None),
    ({"msgtype": "feedCard", "feedCard": {"links": [{"title": "a", "messageUrl": "u", "picUrl": "p"}]}},
     "feedCard.links[]"),
    ({"msgtype": "text", "text": {"content": "x"}, "at": {"atMobiles": "138"}}, "at.atMobiles"),
    ({"msgtype": "text", "text": {"content": "x"}, "at": {"isAtAll": "yes"}}, "at.isAtAll"),
])
def test_message_shapes(body: dict[str, Any], problem: str | None) -> None:
    found = shape_error(body)
    assert (found is None) if problem is None else (found is not None and problem in found)

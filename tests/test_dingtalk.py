"""The robot client: every row of DingTalk's error table classified, proxies honoured, the URL never shown."""

from __future__ import annotations

import pytest

from kubedingtalk.config import Secret
from kubedingtalk.dingtalk import (
    CONFIG,
    OK,
    REJECTED,
    RETRY,
    THROTTLED,
    TOO_LARGE,
    DingTalkClient,
    _proxy_for,
    classify,
)
from kubedingtalk.testing.dingtalk import DingTalkServer
from tests.helpers import ForwardProxy


@pytest.mark.parametrize(("status", "errcode", "errmsg", "outcome", "hint"), [
    (200, 0, "ok", OK, ""),
    (200, -1, "系统繁忙", RETRY, ""),
    (502, None, "", RETRY, ""),
    (429, None, "", RETRY, ""),
    (200, 130101, "send too fast", THROTTLED, ""),
    (200, 410100, "send too fast", THROTTLED, ""),
    (200, 310000, "sign not match, more: [...]", CONFIG, "check DINGTALK_SECRET"),
    (200, 310000, "invalid timestamp", CONFIG, "clock"),
    (200, 310000, "keywords not in content", CONFIG, "DINGTALK_KEYWORD"),
    (200, 310000, "ip 10.0.0.1 not in whitelist", CONFIG, "IP allow-list"),
    (200, 300001, "token is not exist", CONFIG, "check DINGTALK_TOKEN"),
    (200, 300005, "token is not exist", CONFIG, "check DINGTALK_TOKEN"),
    (200, 400101, "access_token不存在", CONFIG, "check DINGTALK_TOKEN"),
    (200, 400013, "群已被解散", CONFIG, "disbanded"),
    (200, 400102, "机器人已停用", CONFIG, "disabled"),
    (200, 400106, "机器人不存在", CONFIG, "not in the group"),
    (200, 400105, "不支持的消息类型", CONFIG, "bug"),
    (200, 40035, "缺少参数 access_token", CONFIG, "DINGTALK_TOKEN"),
    (200, 43002, "需要POST请求", CONFIG, "bug"),
    (200, 430101, "含有不安全的外链", REJECTED, "rejected"),
    (200, 430104, "内容不安全", REJECTED, "rejected"),
    (200, 460101, "message too long", TOO_LARGE, ""),
    (200, 101002, "message too long", TOO_LARGE, ""),
    (404, None, "not found", CONFIG, "HTTP 404"),
])
def test_every_answer_has_a_class_and_config_errors_a_hint(status: int, errcode: int | None, errmsg: str,
                                                           outcome: str, hint: str) -> None:
    answer = classify(status, errcode, errmsg)
    assert answer.outcome == outcome
    assert hint in answer.hint


def test_proxies_follow_https_proxy_and_no_proxy() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=x"
    assert _proxy_for(url, {"HTTPS_PROXY": "http://proxy:3128"}) == "http://proxy:3128"
    assert _proxy_for(url, {"https_proxy": "http://proxy:3128", "NO_PROXY": ".dingtalk.com"}) is None
    assert _proxy_for(url, {"HTTP_PROXY": "http://proxy:3128"}) is None
    assert _proxy_for(url, {}) is None
    client = DingTalkClient(Secret(url), environ={"HTTPS_PROXY": "http://proxy:3128"})
    assert client.proxied and repr(client) == "DingTalkClient(url='***', signed=False, proxied=True)"


def test_a_post_reads_errcode_from_a_200(dingtalk: DingTalkServer) -> None:
    client = DingTalkClient(Secret(dingtalk.webhook_url("test-token")), environ={})
    assert client.post(b'{"msgtype":"text","text":{"content":"hi"}}').outcome == OK
    answer = client.post(b'{"msgtype":"nope"}')
    assert (answer.outcome, answer.errcode) == (CONFIG, 400105)


def test_transport_errors_are_retry_answers_without_the_url(dingtalk: DingTalkServer) -> None:
    url = dingtalk.webhook_url("test-token")
    dingtalk.stop()
    answer = DingTalkClient(Secret(url), environ={}, timeout=1.0).post(b"{}")
    assert answer.outcome == RETRY and "test-token" not in answer.errmsg


def test_posts_go_through_the_proxy_unless_no_proxy_covers_the_host(dingtalk: DingTalkServer) -> None:
    proxy = ForwardProxy()
    try:
        url = Secret(dingtalk.webhook_url("test-token"))
        via = DingTalkClient(url, environ={"HTTP_PROXY": proxy.url})
        assert via.post(b'{"msgtype":"text","text":{"content":"via proxy"}}').outcome == OK
        assert len(proxy.requests) == 1 and proxy.requests[0].startswith(dingtalk.url + "/robot/send?")
        direct = DingTalkClient(url, environ={"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"})
        assert direct.post(b'{"msgtype":"text","text":{"content":"direct"}}').outcome == OK
        assert len(proxy.requests) == 1 and [m.text for m in dingtalk.messages] == ["via proxy", "direct"]
    finally:
        proxy.close()

"""The signature against DingTalk's published test vector."""

from kubedingtalk.signing import signature, signed_url


def test_published_test_vector() -> None:
    assert signature("this is secret", 1577262236757) == "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="


def test_url_is_encoded_once() -> None:
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", "this is secret", 1577262236757)
    assert url == ("https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1577262236757"
                   "&sign=hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D")
    assert "%25" not in url


def test_a_url_without_query_gets_one() -> None:
    assert signed_url("http://h/robot/send", "s", 1).startswith("http://h/robot/send?timestamp=1&sign=")

"""Every variable's parsing, defaults and errors."""

from __future__ import annotations

import pytest

from kubedingtalk.config import VARIABLES, ConfigError, Secret, Settings

BASE = {"DINGTALK_TOKEN": "abc123"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env})


def problems(**env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, **env})
    return caught.value.problems


def test_defaults_keep_the_seed_values() -> None:
    s = settings()
    assert (s.tick_rate_ms, s.flood_expire_ms, s.not_ready_min_time_ms) == (15000, 60000, 60000)
    assert s.kube_use_kubeconfig is False and s.kube_use_cluster is True
    assert s.kube_namespaces_only == () and s.kube_namespaces_exclude == ()
    assert s.recovery_alert is True and s.dry_run is False and s.leader_elect is False
    assert (s.log_level, s.log_format, s.http_port, s.cluster_name) == ("info", "json", 8080, "kubernetes")
    assert s.dingtalk_secret is None and s.dingtalk_keyword == "" and s.kube_label_selector == ""


def test_every_variable_has_a_default_matching_the_dataclass() -> None:
    fresh = Settings()
    for var in VARIABLES:
        assert getattr(fresh, var.attr) == var.default, var.env


@pytest.mark.parametrize(("env", "attr", "raw", "expected"), [
    ("TICK_RATE", "tick_rate_ms", "5000", 5000),
    ("TICK_RATE", "tick_rate_ms", " 100 ", 100),
    ("FLOOD_EXPIRE", "flood_expire_ms", "0", 0),
    ("FLOOD_EXPIRE", "flood_expire_ms", "3600000", 3600000),
    ("NOT_READY_MIN_TIME", "not_ready_min_time_ms", "120000", 120000),
    ("KUBE_USE_KUBECONFIG", "kube_use_kubeconfig", "YES", True),
    ("RECOVERY_ALERT", "recovery_alert", "0", False),
    ("DRY_RUN", "dry_run", "True", True),
    ("LEADER_ELECT", "leader_elect", "on", True),
    ("KUBE_NAMESPACES_ONLY", "kube_namespaces_only", '["default", "kube-system"]', ("default", "kube-system")),
    ("KUBE_NAMESPACES_ONLY", "kube_namespaces_only", "default, prod ,", ("default", "prod")),
    ("KUBE_NAMESPACES_ONLY", "kube_namespaces_only", "a,a,b", ("a", "b")),
    ("KUBE_NAMESPACES_ONLY", "kube_namespaces_only", "", ()),
    ("KUBE_NAMESPACES_EXCLUDE", "kube_namespaces_exclude", "kube-system", ("kube-system",)),
    ("KUBE_LABEL_SELECTOR", "kube_label_selector", "app=web,tier!=cache,env in (prod,staging),!canary",
     "app=web,tier!=cache,env in (prod,staging),!canary"),
    ("DINGTALK_KEYWORD", "dingtalk_keyword", " alert ", "alert"),
    ("DINGTALK_AT_MOBILES", "dingtalk_at_mobiles", "13800000000,13900000000", ("13800000000", "13900000000")),
    ("DINGTALK_AT_USER_IDS", "dingtalk_at_user_ids", '["manager01"]', ("manager01",)),
    ("CLUSTER_NAME", "cluster_name", "prod-sh", "prod-sh"),
    ("LOG_LEVEL", "log_level", "DEBUG", "debug"),
    ("LOG_FORMAT", "log_format", "console", "console"),
    ("HTTP_PORT", "http_port", "0", 0),
    ("HTTP_PORT", "http_port", "9100", 9100),
])
def test_valid_values(env: str, attr: str, raw: str, expected: object) -> None:
    assert getattr(settings(**{env: raw}), attr) == expected


@pytest.mark.parametrize(("env", "raw", "expected_form"), [
    ("TICK_RATE", "abc", "whole number of milliseconds >= 100"),
    ("TICK_RATE", "15s", "whole number of milliseconds"),
    ("TICK_RATE", "50", ">= 100"),
    ("FLOOD_EXPIRE", "-1", ">= 0"),
    ("NOT_READY_MIN_TIME", "1.5", "whole number of milliseconds"),
    ("KUBE_USE_KUBECONFIG", "maybe", "true/false"),
    ("RECOVERY_ALERT", "y", "true/false"),
    ("DRY_RUN", "2", "true/false"),
    ("KUBE_NAMESPACES_ONLY", "[1", "JSON array"),
    ("KUBE_NAMESPACES_ONLY", "[1, 2]", "JSON array of strings"),
    ("KUBE_NAMESPACES_ONLY", "Default", "not valid: Default"),
    ("KUBE_NAMESPACES_EXCLUDE", "a_b", "not valid: a_b"),
    ("KUBE_LABEL_SELECTOR", "=web", "label selector"),
    ("KUBE_LABEL_SELECTOR", "app=a b", "label selector"),
    ("KUBE_LABEL_SELECTOR", "env in prod", "label selector"),
    ("DINGTALK_AT_MOBILES", "@138", "without '@'"),
    ("LOG_LEVEL", "verbose", "debug, info, warning, error"),
    ("LOG_FORMAT", "xml", "json, console"),
    ("HTTP_PORT", "70000", "0 to 65535"),
    ("HTTP_PORT", "http", "0 to 65535"),
])
def test_invalid_values_name_variable_value_and_form(env: str, raw: str, expected_form: str) -> None:
    found = problems(**{env: raw})
    assert len(found) == 1
    assert found[0].startswith(f"{env}={raw!r}: expected ")
    assert expected_form in found[0]


def test_all_problems_are_reported_at_once() -> None:
    found = problems(TICK_RATE="abc", KUBE_NAMESPACES_ONLY="[1", HTTP_PORT="-5")
    assert [p.split("=")[0] for p in found] == ["TICK_RATE", "KUBE_NAMESPACES_ONLY", "HTTP_PORT"]


def test_token_is_required_unless_dry_run() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({})
    assert any(p.startswith("DINGTALK_TOKEN is not set") for p in caught.value.problems)
    assert Settings.from_env({"DRY_RUN": "true"}).dingtalk_token is None


def test_bare_token_builds_the_official_webhook_url() -> None:
    url = settings().webhook_url
    assert url is not None
    assert url.reveal() == "https://oapi.dingtalk.com/robot/send?access_token=abc123"


@pytest.mark.parametrize("url", [
    "https://oapi.dingtalk.com/robot/send?access_token=abc",
    "http://127.0.0.1:8999/robot/send?access_token=abc",
    "https://proxy.example:8443/custom/path?access_token=abc",
])
def test_full_webhook_urls_are_kept_as_given(url: str) -> None:
    s = settings(DINGTALK_TOKEN=url)
    assert s.webhook_url is not None and s.webhook_url.reveal() == url


@pytest.mark.parametrize("bad", [
    "ftp://host/robot/send?access_token=abc", "https:///robot/send?access_token=abc",
    "https://host/robot/send", "two words", "a&b=c",
])
def test_bad_tokens_are_rejected_without_echoing_them(bad: str) -> None:
    found = problems(DINGTALK_TOKEN=bad)
    assert found[0].startswith("DINGTALK_TOKEN='***': expected ")
    assert bad not in "\n".join(found)


def test_empty_secret_is_a_problem_shown_redacted() -> None:
    found = problems(DINGTALK_SECRET=" ")
    assert found == ["DINGTALK_SECRET='***': expected the robot's signing secret (it starts with SEC)"]


def test_cluster_location_must_be_known() -> None:
    found = problems(KUBE_USE_CLUSTER="false")
    assert found[0].startswith("KUBE_USE_KUBECONFIG and KUBE_USE_CLUSTER are both off")


def test_kubeconfig_alone_is_enough() -> None:
    s = settings(KUBE_USE_CLUSTER="off", KUBE_USE_KUBECONFIG="1")
    assert (s.kube_use_cluster, s.kube_use_kubeconfig) == (False, True)


def test_a_namespace_cannot_be_both_watched_and_excluded() -> None:
    found = problems(KUBE_NAMESPACES_ONLY="a,b", KUBE_NAMESPACES_EXCLUDE="b")
    assert "KUBE_NAMESPACES_EXCLUDE names b" in found[0]


def test_secrets_stay_hidden_in_repr_and_redacted_output() -> None:
    s = settings(DINGTALK_TOKEN="tok-visible-1", DINGTALK_SECRET="SECsecretvalue")
    for text in (repr(s), str(s), str(s.redacted()), f"{s.dingtalk_token}", repr(s.webhook_url)):
        assert "tok-visible-1" not in text and "SECsecretvalue" not in text
    assert s.redacted()["DINGTALK_TOKEN"] == "***" and s.redacted()["DINGTALK_SECRET"] == "***"
    assert set(s.secrets()) >= {"tok-visible-1", "SECsecretvalue"}


def test_secret_compares_by_value() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and not Secret("")


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(AttributeError):
        s.tick_rate_ms = 1  # type: ignore[misc]


def test_readme_documents_every_variable_with_its_default() -> None:
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for var in VARIABLES:
        assert var.table_row() in readme, f"README's settings table lacks or misstates {var.env}"

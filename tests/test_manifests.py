"""The shipped manifests and image agree with the code: settings, secrets, names, version, security."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from kubedingtalk import __version__
from kubedingtalk.config import VARIABLES, Settings

ROOT = Path(__file__).parent.parent
BY_ENV = {v.env: v for v in VARIABLES}


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ROOT / "manifests" / name).read_text()) if d]


def container() -> dict[str, Any]:
    (deployment,) = docs("deployment.yaml")
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return main


def test_every_env_var_set_or_suggested_is_a_setting() -> None:
    set_names = [e["name"] for e in container()["env"]]
    suggested = re.findall(r"#\s*- name: (\w+)", (ROOT / "manifests" / "deployment.yaml").read_text())
    assert suggested, "the seed's settings are shown as comments"
    unknown = [n for n in set_names + suggested if n not in BY_ENV]
    assert unknown == []
    assert {"TICK_RATE", "FLOOD_EXPIRE", "NOT_READY_MIN_TIME"} <= set(suggested)


def test_the_seeds_commented_settings_show_the_real_defaults() -> None:
    text = (ROOT / "manifests" / "deployment.yaml").read_text()
    shown = dict(re.findall(r'#\s*- name: (\w+)\n\s*#\s*value: "(\d+)"', text))
    for name in ("TICK_RATE", "FLOOD_EXPIRE", "NOT_READY_MIN_TIME"):
        assert shown[name] == BY_ENV[name].default_text, name


def test_every_secret_setting_comes_from_the_secret() -> None:
    env = {e["name"]: e for e in container()["env"]}
    (secret,) = docs("secret.yaml")
    for var in VARIABLES:
        if var.secret:
            assert "value" not in env[var.env], f"{var.env} must not be a literal"
            ref = env[var.env]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] == var.env
            assert var.env in secret["stringData"]


def test_names_the_code_uses_match_the_rbac() -> None:
    defaults = Settings()
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "Role")
    leases = [r for r in role["rules"] if "leases" in r["resources"] and "resourceNames" in r]
    assert leases[0]["resourceNames"] == [defaults.lease_name]
    configmaps = [r for r in role["rules"] if "configmaps" in r["resources"] and "resourceNames" in r]
    assert configmaps[0]["resourceNames"] == [defaults.state_configmap]
    assert sorted(v for r in role["rules"] for v in r["verbs"]) == ["create", "create", "get", "get", "update",
                                                                    "update"]
    cluster_role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole")
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def test_deployment_is_restricted_and_probed_and_drains_before_the_kill() -> None:
    (deployment,) = docs("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    main = container()
    assert deployment["apiVersion"] == "apps/v1" and deployment["spec"]["replicas"] == 2
    assert {"name": "LEADER_ELECT", "value": "true"} in main["env"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = main["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["ports"][0]["containerPort"] == Settings().http_port
    assert pod["terminationGracePeriodSeconds"] > Settings().shutdown_timeout_ms / 1000
    assert main["image"] == f"kube-dingtalk:{__version__}"


def test_the_image_runs_the_service_as_a_numeric_non_root_user() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    final = dockerfile.split("\nFROM ")[-1]
    assert re.search(r"^USER [1-9]\d*:[1-9]\d*$", final, re.M)
    assert 'ENTRYPOINT ["kubedingtalk", "run"]' in final
    assert "PYTHONUNBUFFERED=1" in final
    assert "pip" not in final.split("COPY --from=build")[1]

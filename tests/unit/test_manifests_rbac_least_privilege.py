"""RBAC in examples/deploy/ is least privilege: no wildcards anywhere, no secrets, no
privilege-escalation verbs, and each role grants exactly what its component uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    doc
    for path in sorted((ROOT / "examples/deploy").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]
ROLES = {d["metadata"]["name"]: d for d in DOCS if d["kind"] in ("ClusterRole", "Role")}
DANGEROUS_VERBS = {"escalate", "bind", "impersonate", "deletecollection", "*"}


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def test_roles_exist_for_both_components() -> None:
    assert set(ROLES) == {"jaring-operator", "jaring-node"}


@pytest.mark.parametrize("name", sorted(ROLES))
def test_no_wildcards_and_no_dangerous_verbs(name: str) -> None:
    for rule in ROLES[name]["rules"]:
        for key in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
            assert "*" not in rule.get(key, []), f"{name}: wildcard in {key}: {rule}"
            assert not any("*" in item for item in rule.get(key, [])), rule
        assert not set(rule["verbs"]) & DANGEROUS_VERBS, rule
        assert "nonResourceURLs" not in rule


@pytest.mark.parametrize("name", sorted(ROLES))
def test_no_access_to_secrets_or_rbac(name: str) -> None:
    for group, resource, _ in grants(ROLES[name]):
        assert resource.split("/")[0] not in {
            "secrets",
            "serviceaccounts",
            "roles",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
        }
        assert group != "rbac.authorization.k8s.io"


def test_operator_gets_exactly_what_it_uses() -> None:
    nad = ("k8s.cni.cncf.io", "network-attachment-definitions")
    assert grants(ROLES["jaring-operator"]) == {
        (*nad, "get"),
        (*nad, "list"),
        (*nad, "watch"),
        (*nad, "patch"),
        ("k8s.cni.cncf.io", "network-attachment-definitions/status", "get"),
        ("k8s.cni.cncf.io", "network-attachment-definitions/status", "patch"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "events", "create"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "get"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch"),
    }


def test_node_gets_exactly_what_it_uses() -> None:
    nad = ("k8s.cni.cncf.io", "network-attachment-definitions")
    assert grants(ROLES["jaring-node"]) == {
        (*nad, "get"),
        (*nad, "list"),
        (*nad, "watch"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods", "patch"),
        ("", "events", "create"),
    }


def test_operator_may_patch_only_its_own_webhook_configurations() -> None:
    for rule in ROLES["jaring-operator"]["rules"]:
        if "admissionregistration.k8s.io" in rule["apiGroups"]:
            assert rule["resourceNames"] == ["jaring-operator"]
            assert "create" not in rule["verbs"]  # shipped in 30-webhooks.yaml instead


def test_operator_cannot_change_pods_and_node_cannot_change_nads() -> None:
    operator = grants(ROLES["jaring-operator"])
    assert not {g for g in operator if g[1] == "pods" and g[2] not in ("list", "watch")}
    node = grants(ROLES["jaring-node"])
    assert {g[2] for g in node if g[1] == "network-attachment-definitions"} == {
        "get",
        "list",
        "watch",
    }
    assert not any(verb == "delete" for _, _, verb in operator | node)


def test_every_role_is_bound_to_its_own_service_account() -> None:
    bindings = [d for d in DOCS if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    accounts = {d["metadata"]["name"] for d in DOCS if d["kind"] == "ServiceAccount"}
    assert {b["roleRef"]["name"] for b in bindings} == set(ROLES)
    for binding in bindings:
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount"
        assert subject["name"] == binding["roleRef"]["name"] in accounts
    workloads = {d["metadata"]["name"]: d for d in DOCS if d["kind"] in ("Deployment", "DaemonSet")}
    for name, workload in workloads.items():
        assert workload["spec"]["template"]["spec"]["serviceAccountName"] == name

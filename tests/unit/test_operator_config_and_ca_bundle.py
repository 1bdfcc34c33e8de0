"""The operator's settings from JARING_* variables, and the merge patch that publishes
the webhook CA into a webhook configuration (all webhooks, guarded by resourceVersion)."""

from __future__ import annotations

import base64
from pathlib import Path

from jaring.operator.admission import PodPolicy
from jaring.operator.config import OperatorConfig, from_environ
from jaring.operator.kubeapi import ApiError, ca_bundle_patch
from jaring.operator.main import parse_args


def test_defaults_when_nothing_is_set() -> None:
    assert from_environ({}) == OperatorConfig()
    assert OperatorConfig().hostnames[-1] == "jaring-operator.jaring-system.svc.cluster.local"


def test_every_variable_is_read() -> None:
    config = from_environ(
        {
            "JARING_BLOCK_DELETE_IN_USE": "true",
            "JARING_NAMESPACE_ISOLATION": "yes",
            "JARING_GLOBAL_NAMESPACES": "shared, infra,",
            "JARING_WEBHOOKS": "0",
            "JARING_WEBHOOK_PORT": "9443",
            "JARING_CERT_DIR": "/certs",
            "JARING_SERVICE": "hooks",
            "POD_NAMESPACE": "netops",
        },
        argv_hostnames=["hooks.example"],
    )
    assert config.block_delete_in_use is True
    assert config.pod_policy == PodPolicy(
        namespace_isolation=True, global_namespaces=frozenset({"shared", "infra"})
    )
    assert config.webhooks is False
    assert config.webhook_port == 9443
    assert config.cert_dir == Path("/certs")
    assert (config.service, config.service_namespace) == ("hooks", "netops")
    assert config.hostnames[:2] == ("hooks", "hooks.netops")
    assert config.hostnames[-1] == "hooks.example"


def test_explicit_service_namespace_wins_over_the_pods() -> None:
    config = from_environ({"JARING_SERVICE_NAMESPACE": "a", "POD_NAMESPACE": "b"})
    assert config.service_namespace == "a"


def test_command_line() -> None:
    args = parse_args(["--namespace", "a", "--namespace", "b", "--liveness", "", "--hostname", "x"])
    assert (args.namespace, args.liveness, args.hostname) == (["a", "b"], "", ["x"])


CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
WANTED = base64.b64encode(CA).decode()


def test_ca_bundle_patch_sets_every_webhook_and_guards_the_version() -> None:
    config = {
        "metadata": {"name": "jaring-operator", "resourceVersion": "42"},
        "webhooks": [
            {"name": "a", "clientConfig": {"service": {"name": "s", "path": "/validate-nad"}}},
            {"name": "b", "clientConfig": {"caBundle": "b2xk"}, "failurePolicy": "Ignore"},
        ],
    }
    patch = ca_bundle_patch(config, CA)
    assert patch == {
        "metadata": {"resourceVersion": "42"},
        "webhooks": [
            {
                "name": "a",
                "clientConfig": {
                    "service": {"name": "s", "path": "/validate-nad"},
                    "caBundle": WANTED,
                },
            },
            {"name": "b", "clientConfig": {"caBundle": WANTED}, "failurePolicy": "Ignore"},
        ],
    }
    assert config["webhooks"][1]["clientConfig"] == {"caBundle": "b2xk"}  # input untouched


def test_ca_bundle_patch_is_none_when_already_published() -> None:
    config = {"webhooks": [{"name": "a", "clientConfig": {"caBundle": WANTED}}]}
    assert ca_bundle_patch(config, CA) is None
    assert ca_bundle_patch({"webhooks": []}, CA) is None


def test_api_errors_know_which_statuses_are_transient() -> None:
    assert ApiError(503, "x").transient
    assert ApiError(429, "x").transient
    assert ApiError(409, "conflict").transient
    assert not ApiError(403, "forbidden").transient
    assert str(ApiError(404, "gone")) == "HTTP 404: gone"

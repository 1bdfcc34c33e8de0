"""Every manifest in crds/ and examples/deploy/ is valid Kubernetes (checked offline with
kubernetes-validate, strict: unknown fields fail), and the pieces agree with each other
and with the operator's defaults: names, ports, webhook paths, the installer's flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from jaring.operator import admission, install
from jaring.operator.config import OperatorConfig
from jaring.operator.validation import conditions, ready_condition

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*(ROOT / "crds").glob("*.yaml"), *(ROOT / "examples/deploy").glob("*.yaml")])
DOCS = [(path, doc) for path in FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in DOCS if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def test_there_are_manifests_to_check() -> None:
    kinds = {d["kind"] for _, d in DOCS}
    assert {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "DaemonSet",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    } <= kinds


@pytest.mark.parametrize(
    "doc",
    [d for _, d in DOCS],
    ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in DOCS],
)
def test_manifest_is_valid_kubernetes(doc: dict[str, Any]) -> None:
    version = kubernetes_validate.utils.latest_version()
    kubernetes_validate.validate(doc, version, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    """The check above can fail: a misspelt field is an error in strict mode."""
    bad = yaml.safe_load((ROOT / "examples/deploy/20-operator.yaml").read_text().split("---")[0])
    bad["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.utils.latest_version(), strict=True)


def test_nad_crd_keeps_the_npwg_names() -> None:
    crd = find("CustomResourceDefinition", "network-attachment-definitions.k8s.cni.cncf.io")
    assert crd["spec"]["group"] == "k8s.cni.cncf.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "plural": "network-attachment-definitions",
        "singular": "network-attachment-definition",
        "kind": "NetworkAttachmentDefinition",
        "shortNames": ["net-attach-def"],
    }
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
    assert version["subresources"] == {"status": {}}


def test_nad_crd_accepts_everything_multus_crd_accepts() -> None:
    """Multus's own schema (deployments/multus-daemonset.yml): spec.config, a string."""
    multus_spec = {"type": "object", "properties": {"config": {"type": "string"}}}
    crd = find("CustomResourceDefinition", "network-attachment-definitions.k8s.cni.cncf.io")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    assert spec["type"] == multus_spec["type"]
    assert spec.get("required") in (None, [])
    for key, sub in multus_spec["properties"].items():
        assert spec["properties"][key]["type"] == sub["type"]
    assert set(spec["properties"]) == set(multus_spec["properties"])


def test_status_the_operator_writes_fits_the_crd_schema() -> None:
    crd = find("CustomResourceDefinition", "network-attachment-definitions.k8s.cni.cncf.io")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    written, _ = conditions(None, ready_condition((), generation=3), now="2026-01-01T00:00:00Z")
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "n"},
        "spec": {"config": "{}"},
        "status": {"conditions": written},
    }
    jsonschema.validate(nad, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**nad, "status": {"conditions": [{"type": "Ready"}]}}, schema)


def test_ipamclaim_crd_is_npwg_v1_3() -> None:
    crd = find("CustomResourceDefinition", "ipamclaims.k8s.cni.cncf.io")
    assert crd["spec"]["names"]["kind"] == "IPAMClaim"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert sorted(spec["required"]) == ["interface", "network"]


def test_webhook_configurations_point_at_the_operator_service_and_its_webhooks() -> None:
    defaults = OperatorConfig()
    service = find("Service", defaults.service)
    assert service["metadata"]["namespace"] == defaults.service_namespace
    deployment = find("Deployment", "jaring-operator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["webhooks"] == defaults.webhook_port
    assert service["spec"]["ports"][0]["targetPort"] == "webhooks"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(defaults.cert_dir) in mounts  # the root filesystem is read-only
    paths = []
    for kind, name in (
        ("ValidatingWebhookConfiguration", defaults.validating_webhook_configuration),
        ("MutatingWebhookConfiguration", defaults.mutating_webhook_configuration),
    ):
        for hook in find(kind, name)["webhooks"]:
            svc = hook["clientConfig"]["service"]
            assert (svc["name"], svc["namespace"]) == (defaults.service, defaults.service_namespace)
            assert svc["port"] == service["spec"]["ports"][0]["port"]
            assert "caBundle" not in hook["clientConfig"]  # the operator publishes it
            paths.append(svc["path"].lstrip("/"))
    assert sorted(paths) == sorted(admission.WEBHOOKS)


def test_pod_webhooks_fail_open_and_skip_system_namespaces() -> None:
    hooks = [
        h
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
        for h in find(kind)["webhooks"]
        if h["rules"][0]["resources"] == ["pods"]
    ]
    assert len(hooks) == 2
    for hook in hooks:
        assert hook["failurePolicy"] == "Ignore"
        exprs = hook["namespaceSelector"]["matchExpressions"]
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-system"],
        } in exprs
    namespace = find("Namespace", "jaring-system")
    assert namespace["metadata"]["labels"]["jaring.dev/webhooks"] == "skip"


def test_node_installer_flags_are_the_installers_own() -> None:
    daemonset = find("DaemonSet", "jaring-node")
    pod = daemonset["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (sync,) = [c for c in pod["containers"] if c["name"] == "sync"]
    volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    for container in (init, sync):
        assert container["command"][-2:] == ["-m", "jaring.operator.install"]
        args = install.parse_args(container["args"])
        by_mount = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert by_mount[str(args.cni_conf_dir)] == str(args.host_conf_dir)
        if not args.sync_only:
            assert str(args.cni_bin_dir) in by_mount
            assert by_mount[str(args.runtime_dir)] == str(args.host_runtime_dir)
    assert install.parse_args(sync["args"]).refresh > 0
    assert install.parse_args(init["args"]).refresh == 0
    images = {c["image"] for c in [init, *pod["containers"]]}
    assert images == {f"jaring:{install.parse_args(init['args']).version}"}


def test_containerfile_copies_every_package_the_image_needs() -> None:
    text = (ROOT / "Containerfile").read_text()
    for folder in ("cni", "metaplugin", "delegates", "operator"):
        assert f"COPY {folder} {folder}" in text
        assert (ROOT / folder).is_dir()
    assert "/opt/jaring" in text  # the tree the installer copies (--source default)
    assert str(install.parse_args(["--version=x"]).source) == "/opt/jaring"

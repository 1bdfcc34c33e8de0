"""The running operator's admission webhooks, called over HTTPS exactly as the API server
calls them: an AdmissionReview request in, an AdmissionReview response out, for every
rule; plus the CA bundle the operator publishes into the webhook configurations."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytestmark = pytest.mark.api

Eventually = Callable[..., Awaitable[Any]]
GOOD = {"cniVersion": "1.0.0", "type": "ipvlan", "master": "eth0", "mode": "l2"}


def review(
    obj: dict[str, Any], *, kind: str, namespace: str, operation: str = "CREATE"
) -> dict[str, Any]:
    group, version, plural = (
        ("k8s.cni.cncf.io", "v1", "network-attachment-definitions")
        if kind == "NetworkAttachmentDefinition"
        else ("", "v1", "pods")
    )
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": plural},
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "tester"},
            "object": obj,
            "dryRun": False,
        },
    }


def nad(name: str, config: object, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations:
        meta["annotations"] = annotations
    text = config if isinstance(config, str) else json.dumps(config)
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta,
        "spec": {"config": text},
    }


def pod(networks: str | None, namespace: str, resources: dict[str, Any] | None = None) -> Any:
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    if resources is not None:
        container["resources"] = resources
    annotations = {} if networks is None else {"k8s.v1.cni.cncf.io/networks": networks}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace, "annotations": annotations},
        "spec": {"containers": [container, {"name": "sidecar", "image": "busybox"}]},
    }


async def test_validate_nad_allows_a_good_nad(operator: Any) -> None:
    request = review(nad("vlan1", GOOD), kind="NetworkAttachmentDefinition", namespace="default")
    status, answer = await operator.review("validate-nad", request)
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": request["request"]["uid"], "allowed": True}


async def test_validate_nad_denies_with_the_condition_message(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    bad = {"cniVersion": "1.0.0", "type": "ipvlan", "mode": "l4"}
    request = review(
        nad("bad-ipvlan", bad), kind="NetworkAttachmentDefinition", namespace=api.namespace
    )
    status, answer = await operator.review("validate-nad", request)
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    # The same NAD stored anyway (no webhook registered here) gets the same message.
    await api.create_nad("bad-ipvlan", bad)

    async def condition() -> str | None:
        obj = await api.get(api.nad_path("bad-ipvlan"))
        conds = ((obj or {}).get("status") or {}).get("conditions") or []
        return conds[0]["message"] if conds else None

    assert await eventually(condition) == response["status"]["message"]


async def test_validate_nad_warns_about_a_cni_name_that_differs(operator: Any) -> None:
    conf = dict(GOOD, name="other")
    request = review(nad("vlan1", conf), kind="NetworkAttachmentDefinition", namespace="default")
    _, answer = await operator.review("validate-nad", request)
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == [
        "spec.config.name: CNI name 'other' differs from the NAD name 'vlan1'"
    ]


async def test_validate_nad_ignores_delete(operator: Any) -> None:
    request = review(
        nad("x", "{bad"),
        kind="NetworkAttachmentDefinition",
        namespace="default",
        operation="DELETE",
    )
    request["request"]["oldObject"] = request["request"].pop("object")
    _, answer = await operator.review("validate-nad", request)
    assert answer["response"]["allowed"] is True


@pytest.mark.parametrize(
    ("networks", "fragment"),
    [
        ("Bad_Name", "network name must be a DNS-1123 label"),
        ('[{"name": "a", "ips": ["10.0.0.300/24"]}]', '"ips" must be a list of IP addresses'),
        ('{"name": "a"}', "JSON selection must be a list of objects"),
        ('[{"name": "a", "colour": "red"}]', 'unknown key "colour"'),
        ("a@net1,b@net1", "both use interface net1"),
        (
            '[{"name": "a", "default-route": ["10.0.0.1"]}, {"name": "b", "default-route": '
            '["10.1.0.1"]}]',
            "more than one network requests default-route",
        ),
        (
            '[{"name": "a", "ipam-claim-reference": "c", "ips": ["10.0.0.2/24"]}]',
            'cannot be used together with "ips"',
        ),
    ],
)
async def test_validate_pod_denies_bad_selection_syntax(
    operator: Any, networks: str, fragment: str
) -> None:
    request = review(pod(networks, "default"), kind="Pod", namespace="default")
    _, answer = await operator.review("validate-pod", request)
    assert answer["response"]["allowed"] is False
    assert fragment in answer["response"]["status"]["message"]


async def test_validate_pod_warns_about_a_missing_nad_and_allows(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("present", GOOD)
    await eventually(lambda: operator.sees(nads=1))
    request = review(pod("present,absent", api.namespace), kind="Pod", namespace=api.namespace)
    _, answer = await operator.review("validate-pod", request)
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == [
        f"NetworkAttachmentDefinition {api.namespace}/absent does not exist (yet): "
        "the pod will not start until it does"
    ]


async def test_validate_pod_allows_a_pod_without_networks(operator: Any) -> None:
    request = review(pod(None, "default"), kind="Pod", namespace="default")
    _, answer = await operator.review("validate-pod", request)
    assert answer["response"] == {"uid": request["request"]["uid"], "allowed": True}


async def test_validate_pod_enforces_namespace_isolation_when_enabled(
    api: Any, operator_config: Any, configure: Any, start_operator: Any
) -> None:
    from jaring.operator.admission import PodPolicy

    config = configure(operator_config, pod_policy=PodPolicy(namespace_isolation=True))
    async with start_operator(config) as running:
        own = review(pod("tenant-a/net", "tenant-a"), kind="Pod", namespace="tenant-a")
        shared = review(pod("default/net", "tenant-a"), kind="Pod", namespace="tenant-a")
        foreign = review(pod("tenant-b/net", "tenant-a"), kind="Pod", namespace="tenant-a")
        assert (await running.review("validate-pod", own))[1]["response"]["allowed"]
        assert (await running.review("validate-pod", shared))[1]["response"]["allowed"]
        _, answer = await running.review("validate-pod", foreign)
        assert answer["response"]["allowed"] is False
        assert "namespace isolation" in answer["response"]["status"]["message"]
        assert "tenant-b/net" in answer["response"]["status"]["message"]


def decoded_patch(answer: dict[str, Any]) -> list[dict[str, Any]]:
    assert answer["response"]["patchType"] == "JSONPatch"
    return list(json.loads(base64.b64decode(answer["response"]["patch"])))


async def test_mutate_pod_injects_one_resource_per_attachment(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    sriov = {"cniVersion": "1.0.0", "type": "sriov", "vlan": 100}
    annotation = {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov_netdevice"}
    await api.create_nad("sriov-a", sriov, annotations=annotation)
    await api.create_nad("plain", GOOD)
    await eventually(lambda: operator.sees(nads=2))
    request = review(
        pod("sriov-a,sriov-a@vf1,plain", api.namespace), kind="Pod", namespace=api.namespace
    )
    status, answer = await operator.review("mutate-pod", request)
    assert status == 200
    assert answer["response"]["allowed"] is True
    counts = {"intel.com/sriov_netdevice": "2"}
    assert decoded_patch(answer) == [
        {
            "op": "add",
            "path": "/spec/containers/0/resources",
            "value": {"requests": counts, "limits": counts},
        }
    ]


async def test_mutate_pod_adds_to_existing_resources_with_escaped_keys(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    annotation = {"k8s.v1.cni.cncf.io/resourceName": "example.com/vf"}
    await api.create_nad("vf", {"cniVersion": "1.0.0", "type": "sriov"}, annotations=annotation)
    await eventually(lambda: operator.sees(nads=1))
    resources = {"requests": {"cpu": "1"}, "limits": {"cpu": "1", "example.com/vf": "0"}}
    request = review(pod("vf", api.namespace, resources), kind="Pod", namespace=api.namespace)
    _, answer = await operator.review("mutate-pod", request)
    assert decoded_patch(answer) == [
        {
            "op": "add",
            "path": "/spec/containers/0/resources/requests/example.com~1vf",
            "value": "1",
        },
        {
            "op": "replace",
            "path": "/spec/containers/0/resources/limits/example.com~1vf",
            "value": "1",
        },
    ]


async def test_mutate_pod_without_resource_names_has_no_patch(operator: Any) -> None:
    request = review(pod("whatever", "default"), kind="Pod", namespace="default")
    _, answer = await operator.review("mutate-pod", request)
    assert answer["response"] == {"uid": request["request"]["uid"], "allowed": True}


async def test_malformed_reviews_and_unknown_webhooks_are_http_errors(operator: Any) -> None:
    assert (await operator.review("validate-nad", {"kind": "AdmissionReview"}))[0] == 400
    no_uid = review(pod(None, "default"), kind="Pod", namespace="default")
    del no_uid["request"]["uid"]
    assert (await operator.review("validate-pod", no_uid))[0] == 400
    assert (await operator.review("no-such-hook", no_uid))[0] == 404


async def test_the_operator_publishes_its_ca_into_both_webhook_configurations(
    api: Any,
    operator_config: Any,
    configure: Any,
    start_operator: Any,
    eventually: Eventually,
) -> None:
    # A unique name: on a real cluster this must not touch an installed jaring's objects.
    name = f"jaring-test-{uuid.uuid4().hex[:6]}"
    config = configure(
        operator_config,
        validating_webhook_configuration=name,
        mutating_webhook_configuration=name,
    )
    base = "/apis/admissionregistration.k8s.io/v1"
    names = {
        "validatingwebhookconfigurations": ["nad", "pod"],
        "mutatingwebhookconfigurations": ["pod"],
    }
    for kind, hooks in names.items():
        body = {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": f"{hook}.jaring.dev",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "clientConfig": {
                        "service": {
                            "name": "jaring-operator",
                            "namespace": "jaring-system",
                            "path": f"/validate-{hook}",
                        }
                    },
                }
                for hook in hooks
            ],
        }
        await api.call("POST", f"{base}/{kind}", body)
        api.cleanups.append(lambda kind=kind: api.call("DELETE", f"{base}/{kind}/{name}"))
    async with start_operator(config):
        ca = (config.cert_dir / "ca.crt").read_bytes()
        wanted = base64.b64encode(ca).decode()
        for kind, hooks in names.items():

            async def published(kind: str = kind) -> bool:
                obj = await api.get(f"{base}/{kind}/{name}")
                return all(h["clientConfig"].get("caBundle") == wanted for h in obj["webhooks"])

            await eventually(published, what=f"caBundle in {kind}")
            obj = await api.get(f"{base}/{kind}/{name}")
            assert [h["name"] for h in obj["webhooks"]] == [f"{h}.jaring.dev" for h in hooks]
            assert obj["webhooks"][0]["clientConfig"]["service"]["name"] == "jaring-operator"

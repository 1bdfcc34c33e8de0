"""Admission decisions as pure functions over an AdmissionReview: the NAD, pod and
mutation webhooks' verdicts and the exact response document, without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from jaring.operator import admission
from jaring.operator.selection import network_ref
from jaring.operator.usage import NadCatalog, NadInfo

POLICY = admission.PodPolicy()


def catalog(*infos: NadInfo) -> NadCatalog:
    nads = NadCatalog()
    for info in infos:
        nads.put(info)
    return nads


def pod(networks: str | None, resources: Any = None, containers: int = 2) -> dict[str, Any]:
    first: dict[str, Any] = {"name": "a"}
    if resources is not None:
        first["resources"] = resources
    annotations = {} if networks is None else {"k8s.v1.cni.cncf.io/networks": networks}
    return {
        "metadata": {"annotations": annotations},
        "spec": {"containers": [first] + [{"name": "b"}] * (containers - 1)},
    }


def request(obj: Any, *, namespace: str = "ns", operation: str = "CREATE") -> dict[str, Any]:
    return {"uid": "u-1", "namespace": namespace, "operation": operation, "object": obj}


def nad_obj(config: object, name: str = "net") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"config": json.dumps(config)}}


def test_nad_review_allows_denies_and_warns() -> None:
    good = {"cniVersion": "1.0.0", "type": "bridge"}
    assert admission.review_nad(nad_obj(good)) == admission.Verdict(True)
    bad = admission.review_nad(nad_obj({"cniVersion": "1.0.0", "type": "bridge", "mtu": "x"}))
    assert (bad.allowed, bad.code) == (False, 400)
    assert bad.message == "spec.config.mtu: bridge: 'x' is not of type 'integer'"
    named = admission.review_nad(nad_obj({**good, "name": "other"}))
    assert named.allowed
    assert named.warnings == ("spec.config.name: CNI name 'other' differs from the NAD name 'net'",)
    both = admission.review_nad(nad_obj({**good, "name": "other", "mtu": "x"}))
    assert not both.allowed and len(both.warnings) == 1


def test_pod_review_reports_missing_nads_once_each_sorted() -> None:
    nads = catalog(NadInfo(network_ref(namespace="ns", name="here")))
    verdict = admission.review_pod(
        pod("zz,here,aa,zz@net9"), namespace="ns", nads=nads, policy=POLICY
    )
    assert verdict.allowed
    assert [w.split(" does not")[0] for w in verdict.warnings] == [
        "NetworkAttachmentDefinition ns/aa",
        "NetworkAttachmentDefinition ns/zz",
    ]


def test_pod_review_namespace_isolation_allows_own_and_global_namespaces() -> None:
    policy = admission.PodPolicy(namespace_isolation=True, global_namespaces=frozenset({"shared"}))
    nads = catalog()
    assert admission.review_pod(pod("a,shared/b"), namespace="ns", nads=nads, policy=policy).allowed
    verdict = admission.review_pod(pod("a,default/b"), namespace="ns", nads=nads, policy=policy)
    assert not verdict.allowed
    # The meta-plugin's own words: the webhook refuses what ADD would refuse.
    assert verdict.message == (
        "networks[1]: namespace isolation: pod in namespace ns may not use default/b: "
        "allowed: ns, shared"
    )
    # Off by default: any namespace.
    assert admission.review_pod(pod("other/x"), namespace="ns", nads=nads, policy=POLICY).allowed


def test_pod_review_denies_bad_syntax_with_the_parsers_message() -> None:
    verdict = admission.review_pod(pod("a@eth0/x"), namespace="ns", nads=catalog(), policy=POLICY)
    assert not verdict.allowed
    assert verdict.message.startswith("networks[0]: interface must be a valid Linux")


SRIOV = NadInfo(network_ref(namespace="ns", name="vf"), "intel.com/sriov")
OTHER = NadInfo(network_ref(namespace="ns", name="mlx"), "nvidia.com/mlx")
PLAIN = NadInfo(network_ref(namespace="ns", name="plain"))


def patch_of(p: dict[str, Any], networks: str) -> list[dict[str, Any]]:
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = networks
    verdict = admission.mutate_pod(p, namespace="ns", nads=catalog(SRIOV, OTHER, PLAIN))
    assert verdict.allowed
    return [dict(op) for op in verdict.patch]


def test_mutation_counts_one_unit_per_attachment_per_resource() -> None:
    ops = patch_of(pod(""), "vf,vf@x,mlx,plain,missing")
    counts = {"intel.com/sriov": "2", "nvidia.com/mlx": "1"}
    assert ops == [
        {
            "op": "add",
            "path": "/spec/containers/0/resources",
            "value": {"requests": counts, "limits": counts},
        }
    ]


def test_mutation_respects_existing_sections_and_larger_user_values() -> None:
    resources = {"requests": {"intel.com/sriov": "5"}, "limits": {"intel.com/sriov": "1"}}
    ops = patch_of(pod("", resources), "vf,vf")
    # requests == limits afterwards, at the user's larger value.
    assert ops == [
        {
            "op": "replace",
            "path": "/spec/containers/0/resources/limits/intel.com~1sriov",
            "value": "5",
        }
    ]
    ops = patch_of(pod("", {"limits": {"cpu": "1"}}), "vf")
    assert ops == [
        {
            "op": "add",
            "path": "/spec/containers/0/resources/requests",
            "value": {"intel.com/sriov": "1"},
        },
        {"op": "add", "path": "/spec/containers/0/resources/limits/intel.com~1sriov", "value": "1"},
    ]


def test_mutation_is_a_no_op_without_resources_containers_or_a_valid_annotation() -> None:
    assert patch_of(pod(""), "plain,missing") == []
    assert patch_of(pod("", containers=0) | {"spec": {"containers": []}}, "vf") == []
    assert admission.mutate_pod(
        pod("[bad"), namespace="ns", nads=catalog(SRIOV)
    ) == admission.Verdict(True)


def test_json_pointer_escaping() -> None:
    assert (
        admission.resource_patch(pod("", {"requests": {}, "limits": {}}), {"a~b/c": 1})[0]["path"]
        == "/spec/containers/0/resources/requests/a~0b~1c"
    )


def test_response_document_shape() -> None:
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request(pod("vf")),
    }
    answer = admission.respond("mutate-pod", review, nads=catalog(SRIOV), policy=POLICY)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert (response["uid"], response["allowed"], response["patchType"]) == (
        "u-1",
        True,
        "JSONPatch",
    )
    assert (
        json.loads(base64.b64decode(response["patch"]))[0]["path"] == "/spec/containers/0/resources"
    )
    denied = admission.respond(
        "validate-pod", {"request": request(pod("BAD"))}, nads=catalog(), policy=POLICY
    )
    assert denied["apiVersion"] == "admission.k8s.io/v1"
    assert denied["response"]["allowed"] is False
    assert denied["response"]["status"]["code"] == 400
    assert "DNS-1123" in denied["response"]["status"]["message"]


def test_v1beta1_reviews_are_answered_in_kind() -> None:
    review = {"apiVersion": "admission.k8s.io/v1beta1", "request": request(pod(None))}
    answer = admission.respond("validate-pod", review, nads=catalog(), policy=POLICY)
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"


def test_delete_and_objectless_requests_are_allowed() -> None:
    for webhook in admission.WEBHOOKS:
        assert admission.decide(
            webhook, request(pod("BAD"), operation="DELETE"), nads=catalog(), policy=POLICY
        ).allowed
        assert admission.decide(
            webhook, {"uid": "u", "operation": "CREATE"}, nads=catalog(), policy=POLICY
        ).allowed


@pytest.mark.parametrize(
    "review", [None, [], {}, {"request": "x"}, {"request": {"uid": ""}}, {"request": {"uid": 5}}]
)
def test_malformed_reviews_raise(review: object) -> None:
    with pytest.raises(admission.BadReviewError):
        admission.respond("validate-pod", review, nads=catalog(), policy=POLICY)


def test_unknown_webhook_raises() -> None:
    with pytest.raises(ValueError, match="unknown webhook 'x'"):
        admission.decide("x", request(pod(None)), nads=catalog(), policy=POLICY)


def test_namespace_comes_from_the_object_when_the_request_has_none() -> None:
    p = pod("a")
    p["metadata"]["namespace"] = "objns"
    verdict = admission.decide(
        "validate-pod",
        {"uid": "u", "operation": "CREATE", "object": p},
        nads=catalog(),
        policy=POLICY,
    )
    assert verdict.warnings[0].startswith("NetworkAttachmentDefinition objns/a")

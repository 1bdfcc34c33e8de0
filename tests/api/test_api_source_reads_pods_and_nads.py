"""ApiSource reads pods and NADs from the API (kmock, or a real cluster)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import NadName, Namespace, PodName
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig
from jaring.metaplugin.sources import ApiSource

from .cluster import Cluster

NETWORKS = "k8s.v1.cni.cncf.io/networks"
MACVLAN = {"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": {}}


@pytest.fixture
def source(cluster: Cluster) -> Iterator[ApiSource]:
    with KubeClient(KubeConfig.load(str(cluster.kubeconfig))) as client:
        yield ApiSource(client)


def test_get_pod_gives_annotations_and_uid(cluster: Cluster, source: ApiSource) -> None:
    uid = cluster.pod("web", annotations={NETWORKS: "mv@data0", "example.com/x": "1"})
    pod = source.get_pod(namespace=Namespace(cluster.namespace), name=PodName("web"))
    assert pod.namespace == cluster.namespace
    assert pod.name == "web"
    assert pod.uid == uid
    assert pod.annotations[NETWORKS] == "mv@data0"
    assert pod.annotations["example.com/x"] == "1"


def test_pod_without_annotations_has_none(cluster: Cluster, source: ApiSource) -> None:
    cluster.pod("bare")
    pod = source.get_pod(namespace=Namespace(cluster.namespace), name=PodName("bare"))
    assert NETWORKS not in pod.annotations


def test_missing_pod_is_container_unknown(cluster: Cluster, source: ApiSource) -> None:
    with pytest.raises(CniError) as info:
        source.get_pod(namespace=Namespace(cluster.namespace), name=PodName("absent"))
    assert info.value.code == Code.CONTAINER_UNKNOWN
    assert info.value.msg == "pod not found"
    assert f"{cluster.namespace}/absent" in info.value.details


def test_get_nad_gives_its_config_text(cluster: Cluster, source: ApiSource) -> None:
    cluster.nad("mv", MACVLAN)
    nad = source.get_nad(namespace=Namespace(cluster.namespace), name=NadName("mv"))
    assert nad is not None
    assert nad.namespace == cluster.namespace
    assert nad.name == "mv"
    assert json.loads(nad.config) == MACVLAN


def test_nad_without_config_has_empty_config(cluster: Cluster, source: ApiSource) -> None:
    cluster.nad("onconf", None)
    nad = source.get_nad(namespace=Namespace(cluster.namespace), name=NadName("onconf"))
    assert nad is not None
    assert nad.config == ""


def test_missing_nad_is_none(cluster: Cluster, source: ApiSource) -> None:
    cluster.nad("mv", MACVLAN)
    other = cluster.add_namespace(cluster.namespace + "-b")
    assert source.get_nad(namespace=Namespace(cluster.namespace), name=NadName("nope")) is None
    assert source.get_nad(namespace=Namespace(other), name=NadName("mv")) is None


def test_deleted_pod_and_nad_are_gone(cluster: Cluster, source: ApiSource) -> None:
    cluster.pod("web")
    cluster.nad("mv", MACVLAN)
    cluster.delete_pod("web")
    cluster.delete_nad("mv")
    assert source.get_nad(namespace=Namespace(cluster.namespace), name=NadName("mv")) is None
    with pytest.raises(CniError) as info:
        source.get_pod(namespace=Namespace(cluster.namespace), name=PodName("web"))
    assert info.value.code == Code.CONTAINER_UNKNOWN


def test_nad_whose_config_is_not_a_string(
    cluster: Cluster, source: ApiSource, kmock_only: None
) -> None:
    cluster.nad_raw(cluster.namespace, "obj", {"config": MACVLAN})
    with pytest.raises(CniError) as info:
        source.get_nad(namespace=Namespace(cluster.namespace), name=NadName("obj"))
    assert info.value.code == Code.INVALID_CONFIG
    assert f"{cluster.namespace}/obj" in info.value.msg
    assert "spec.config is not a string" in info.value.msg


def test_names_that_would_change_the_url_are_refused(source: ApiSource) -> None:
    with pytest.raises(CniError) as info:
        source.get_pod(namespace=Namespace("ns1/../../x"), name=PodName("p"))
    assert info.value.code == Code.INVALID_CONFIG
    with pytest.raises(CniError):
        source.get_nad(namespace=Namespace("ns1"), name=NadName("a?b"))

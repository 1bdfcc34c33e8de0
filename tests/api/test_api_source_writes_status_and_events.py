"""ApiSource writes network-status onto the pod and posts Events about it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import Namespace, PodName, PodUID
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig
from jaring.metaplugin.sources import STATUS_ANNOTATION, ApiSource

from .cluster import Cluster, kubeconfig_doc
from .scripted import refused_port

NETWORKS = "k8s.v1.cni.cncf.io/networks"
STATUS = [
    {"name": "default/cluster", "interface": "eth0", "ips": ["10.1.0.5/24"], "default": True},
    {"name": "ns/mv", "interface": "net1", "ips": ["192.168.9.2/24"], "mac": "02:00:00:00:00:01"},
]


@pytest.fixture
def source(cluster: Cluster) -> Iterator[ApiSource]:
    with KubeClient(KubeConfig.load(str(cluster.kubeconfig))) as client:
        yield ApiSource(client, host="node-a")


def test_status_is_written_and_read_back(cluster: Cluster, source: ApiSource) -> None:
    cluster.pod("web", annotations={NETWORKS: "mv"})
    ns, name = Namespace(cluster.namespace), PodName("web")
    source.write_status(namespace=ns, name=name, status=json.dumps(STATUS))
    stored = cluster.read_pod("web")["metadata"]["annotations"]
    assert json.loads(stored[STATUS_ANNOTATION]) == STATUS
    assert stored[NETWORKS] == "mv"  # a merge patch: the other annotations stay
    assert json.loads(source.get_pod(namespace=ns, name=name).annotations[STATUS_ANNOTATION]) == (
        STATUS
    )


def test_status_written_again_replaces_the_old_one(cluster: Cluster, source: ApiSource) -> None:
    cluster.pod("web")
    ns, name = Namespace(cluster.namespace), PodName("web")
    source.write_status(namespace=ns, name=name, status=json.dumps(STATUS))
    source.write_status(namespace=ns, name=name, status=json.dumps(STATUS[:1]))
    stored = cluster.read_pod("web")["metadata"]["annotations"][STATUS_ANNOTATION]
    assert json.loads(stored) == STATUS[:1]


def test_status_for_a_missing_pod_is_container_unknown(cluster: Cluster, source: ApiSource) -> None:
    with pytest.raises(CniError) as info:
        source.write_status(
            namespace=Namespace(cluster.namespace), name=PodName("gone"), status="[]"
        )
    assert info.value.code == Code.CONTAINER_UNKNOWN
    assert f"{cluster.namespace}/gone" in info.value.details


def test_event_is_posted_about_the_pod(cluster: Cluster, source: ApiSource) -> None:
    uid = cluster.pod("web")
    source.post_event(
        namespace=Namespace(cluster.namespace),
        name=PodName("web"),
        uid=PodUID(uid),
        reason="AddedInterface",
        message="Add net1 [192.168.9.2/24] from ns/mv",
    )
    source.post_event(
        namespace=Namespace(cluster.namespace),
        name=PodName("web"),
        uid=PodUID(uid),
        reason="ErrorAddingNetwork",
        message="x" * 5000,
        warning=True,
    )
    mine = cluster.jaring_events()
    by_reason = {e["reason"]: e for e in mine}
    assert set(by_reason) == {"AddedInterface", "ErrorAddingNetwork"}
    added = by_reason["AddedInterface"]
    assert added["type"] == "Normal"
    assert added["message"] == "Add net1 [192.168.9.2/24] from ns/mv"
    assert added["involvedObject"]["kind"] == "Pod"
    assert added["involvedObject"]["name"] == "web"
    assert added["involvedObject"]["namespace"] == cluster.namespace
    assert added["involvedObject"]["uid"] == uid
    assert added["source"]["host"] == "node-a"
    failed = by_reason["ErrorAddingNetwork"]
    assert failed["type"] == "Warning"
    assert len(failed["message"]) == 1024


def test_event_without_an_api_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kc"
    path.write_text(json.dumps(kubeconfig_doc(f"http://127.0.0.1:{refused_port()}")))
    slept: list[float] = []
    with KubeClient(KubeConfig.load(str(path)), retries=1, sleep=slept.append) as client:
        ApiSource(client).post_event(
            namespace=Namespace("ns1"),
            name=PodName("web"),
            uid=PodUID("u1"),
            reason="AddedInterface",
            message="m",
        )
    assert "cannot post event AddedInterface for ns1/web" in caplog.text
    assert len(slept) == 1

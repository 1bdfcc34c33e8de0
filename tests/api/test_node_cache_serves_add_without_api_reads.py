"""The node daemon's caches (issue 6, LESSONS #8): with warm watches an ADD
reads nothing from the API and writes network-status once; a pod the watch
has not seen costs one GET; pod annotations from the runtime are used as
they are; the caches follow NAD and pod changes; Events are posted off the
hot path. Delegates are tiny shell plugins: no root needed."""

from __future__ import annotations

import json
import stat
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jaring.metaplugin.daemon import Daemon, Settings, Views
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig

from .cluster import Cluster

pytestmark = pytest.mark.api

NODE = "jaring-test-node"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
STATUS = "k8s.v1.cni.cncf.io/network-status"
FAKE_PLUGIN = """#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","mac":"02:00:00:00:00:0N",\
"sandbox":"%s"}],"ips":[{"address":"ADDR","interface":0}]}' "$CNI_IFNAME" "$CNI_NETNS" ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
esac
"""


class CountingClient(KubeClient):
    """A KubeClient that records every request the daemon makes (method, path)."""

    calls: list[tuple[str, str]]
    lock = threading.Lock()

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str = "",
    ) -> dict[str, Any]:
        with self.lock:
            self.calls.append((method, path.split("?", maxsplit=1)[0]))
        return super()._call(method, path, body=body, content_type=content_type)


def poll(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Node:
    """A daemon in this process (no socket needed: `run` is what the socket calls)."""

    def __init__(self, tmp: Path, cluster: Cluster) -> None:
        self.calls: list[tuple[str, str]] = []
        calls = self.calls

        def make_client(config: KubeConfig) -> KubeClient:
            client = CountingClient(config)
            client.calls = calls
            return client

        self.kubeconfig = str(cluster.kubeconfig)
        self.views = Views(
            node_name=NODE,
            default=KubeConfig.load(self.kubeconfig),
            default_key=self.kubeconfig,
            make_client=make_client,
        )
        self.daemon = Daemon(
            Settings(socket_path=str(tmp / "s.sock"), http_address=""), views=self.views
        )
        self.bindir = tmp / "bin"
        self.bindir.mkdir()
        for name, addr, n in (("fakecluster", "10.1.0.5/24", 1), ("fakedata", "10.2.0.5/24", 2)):
            path = self.bindir / name
            path.write_text(FAKE_PLUGIN.replace("ADDR", addr).replace("0N", f"0{n}"))
            path.chmod(path.stat().st_mode | stat.S_IEXEC)
        self.conf: dict[str, Any] = {
            "cniVersion": "1.0.0",
            "name": "jaring",
            "type": "jaring",
            "kubeconfig": self.kubeconfig,
            "cniDir": str(tmp / "cache"),
            "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "fakecluster"}],
        }
        self.cache = self.views.get(self.kubeconfig).cache
        assert self.cache is not None

    def requests(self) -> Counter[str]:
        return Counter(method for method, _ in self.calls)

    def call(
        self,
        command: str,
        namespace: str,
        pod: str,
        *,
        uid: str = "",
        conf: Mapping[str, Any] | None = None,
        cid: str = "",
    ) -> tuple[int, Any]:
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid or f"c-{pod}",
            "CNI_NETNS": f"/var/run/netns/{pod}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(self.bindir),
            "CNI_ARGS": f"K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod};K8S_POD_UID={uid}",
        }
        code, out = self.daemon.run(env, json.dumps(conf or self.conf).encode())
        return code, json.loads(out) if out.strip() else None

    def stop(self) -> None:
        self.views.stop()


@pytest.fixture
def node(tmp_path: Path, cluster: Cluster) -> Iterator[Node]:
    made = Node(tmp_path, cluster)
    try:
        yield made
    finally:
        made.stop()


def nad(cluster: Cluster, name: str) -> None:
    cluster.nad(name, {"cniVersion": "1.0.0", "type": "fakedata"})


def pod_on(cluster: Cluster, name: str, node_name: str, annotations: dict[str, str]) -> str:
    """A pod bound to `node_name` (no kubelet there: it never runs)."""
    uid = str(uuid.uuid4())
    meta: dict[str, Any] = {"name": name, "namespace": cluster.namespace}
    meta["annotations"] = annotations
    if not cluster.real:
        meta["uid"] = uid
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}],
            "automountServiceAccountToken": False,
        },
    }
    created = cluster.admin.post(f"/api/v1/namespaces/{cluster.namespace}/pods", body)
    cluster._created.append(cluster.pod_path(cluster.namespace, name))  # its cleanup list
    found = created.get("metadata", {}).get("uid") or uid
    assert isinstance(found, str)
    return found


def warm(node: Node, cluster: Cluster, pod: str, nad_name: str) -> None:
    assert node.cache is not None
    ns = cluster.namespace
    poll(lambda: node.cache and node.cache.pod(namespace=ns, name=pod), f"pod {pod} cached")
    poll(lambda: node.cache and node.cache.nad(namespace=ns, name=nad_name), "NAD cached")


def test_warm_add_reads_nothing_and_writes_status_once(node: Node, cluster: Cluster) -> None:
    nad(cluster, "data")
    uid = pod_on(cluster, "web", NODE, {NETWORKS: "data"})
    warm(node, cluster, "web", "data")
    before = node.requests()
    code, doc = node.call("ADD", cluster.namespace, "web", uid=uid)
    assert code == 0, doc
    assert doc["ips"][0]["address"] == "10.1.0.5/24"
    during = node.requests() - before
    assert during.get("GET", 0) == 0, node.calls
    assert during.get("PATCH", 0) == 1, node.calls
    status = json.loads(cluster.read_pod("web")["metadata"]["annotations"][STATUS])
    assert [entry["interface"] for entry in status] == ["eth0", "net1"]
    node.views.get(node.kubeconfig).events.drain()  # the ADD's Events, posted meanwhile
    before = node.requests()
    code, doc = node.call("DEL", cluster.namespace, "web", uid=uid)
    assert code == 0, doc
    assert node.requests() - before == Counter()


def test_pod_of_another_node_is_not_cached_and_costs_one_get(node: Node, cluster: Cluster) -> None:
    nad(cluster, "data")
    uid = pod_on(cluster, "elsewhere", "some-other-node", {NETWORKS: "data"})
    pod_on(cluster, "here", NODE, {})
    warm(node, cluster, "here", "data")
    assert node.cache is not None
    assert node.cache.pod(namespace=cluster.namespace, name="elsewhere") is None
    before = node.requests()
    code, doc = node.call("ADD", cluster.namespace, "elsewhere", uid=uid)
    assert code == 0, doc
    gets = [(m, p) for m, p in node.calls[sum(before.values()) :] if m == "GET"]
    assert gets == [("GET", f"/api/v1/namespaces/{cluster.namespace}/pods/elsewhere")]


def test_runtime_pod_annotations_are_used_without_a_read(node: Node, cluster: Cluster) -> None:
    nad(cluster, "data")
    pod_on(cluster, "here", NODE, {})
    warm(node, cluster, "here", "data")
    # The API's copy asks for nothing; the runtime's (containerd's capability) asks for data.
    uid = pod_on(cluster, "fresh", "some-other-node", {})
    conf = node.conf | {
        "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {NETWORKS: "data"}},
    }
    before = node.requests()
    code, doc = node.call("ADD", cluster.namespace, "fresh", uid=uid, conf=conf)
    assert code == 0, doc
    during = node.requests() - before
    assert during.get("GET", 0) == 0, node.calls
    status = json.loads(cluster.read_pod("fresh")["metadata"]["annotations"][STATUS])
    assert [entry["interface"] for entry in status] == ["eth0", "net1"]


def test_cache_follows_nad_and_pod_changes(node: Node, cluster: Cluster) -> None:
    assert node.cache is not None
    cache, ns = node.cache, cluster.namespace
    nad(cluster, "data")
    pod_on(cluster, "web", NODE, {NETWORKS: "data", "big": "x" * 10})
    warm(node, cluster, "web", "data")
    changed = json.dumps({"cniVersion": "1.0.0", "type": "fakedata", "mtu": 1400})
    cluster.admin.patch(cluster.nad_path(ns, "data"), {"spec": {"config": changed}})
    poll(lambda: (n := cache.nad(namespace=ns, name="data")) and n.config == changed, "NAD update")
    cluster.delete_nad("data")
    poll(lambda: cache.nad(namespace=ns, name="data") is None, "NAD deletion")
    cluster.delete_pod("web")
    poll(lambda: cache.pod(namespace=ns, name="web") is None, "pod deletion")


def test_status_annotation_is_not_kept_in_the_cache(node: Node, cluster: Cluster) -> None:
    assert node.cache is not None
    nad(cluster, "data")
    uid = pod_on(cluster, "web", NODE, {NETWORKS: "data"})
    warm(node, cluster, "web", "data")
    code, doc = node.call("ADD", cluster.namespace, "web", uid=uid)
    assert code == 0, doc
    cached = node.cache.pod(namespace=cluster.namespace, name="web")
    assert cached is not None and cached.uid == uid
    assert STATUS not in cached.annotations
    assert cached.annotations[NETWORKS] == "data"


def test_events_are_posted_off_the_hot_path(node: Node, cluster: Cluster) -> None:
    nad(cluster, "data")
    uid = pod_on(cluster, "web", NODE, {NETWORKS: "data"})
    warm(node, cluster, "web", "data")
    code, doc = node.call("ADD", cluster.namespace, "web", uid=uid)
    assert code == 0, doc
    node.views.get(node.kubeconfig).events.drain()
    reasons = [
        (e.get("reason"), e.get("involvedObject", {}).get("name"))
        for e in cluster.events()
        if e.get("involvedObject", {}).get("name") == "web"
    ]
    assert reasons.count(("AddedInterface", "web")) == 2

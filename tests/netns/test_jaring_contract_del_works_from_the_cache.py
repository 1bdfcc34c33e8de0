"""DEL needs nothing but jaring's cache (LESSONS #1): it succeeds and releases
every link and lease twice over, after the pod and its NAD are deleted, with
the API server unreachable, and with the netns already gone."""

from __future__ import annotations

import json
import subprocess

import pytest

from ..api.cluster import Cluster, kubeconfig_doc
from ..api.scripted import refused_port
from .conftest import Host, Runtime, Sandbox, call, sandbox

pytestmark = pytest.mark.root


def added(host: Host, runtime: Runtime, cluster: Cluster) -> Sandbox:
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data,data")
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    assert len(host.leases()) == 3
    assert len(host.host_veths()) == 1
    return box


def assert_released(host: Host, box: Sandbox, *, netns_exists: bool = True) -> None:
    assert host.leases() == []
    assert host.host_veths() == []
    if netns_exists:
        assert set(host.links(box.netns)) == {"lo"}
    cached = (
        [p for p in host.cache_dir.rglob("*") if p.is_file()] if host.cache_dir.exists() else []
    )
    assert [p for p in cached if box.cid in p.name] == []


def test_del_twice(host: Host, runtime: Runtime, cluster: Cluster) -> None:
    box = added(host, runtime, cluster)
    for _ in range(2):
        delete = call(runtime, "DEL", box)
        assert delete.ok, (delete.doc, delete.stderr)
        assert delete.doc is None  # DEL prints nothing on success
        assert_released(host, box)


def test_del_after_the_pod_and_nad_are_deleted(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    box = added(host, runtime, cluster)
    cluster.delete_pod("web")
    cluster.delete_nad("data")
    delete = call(runtime, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert_released(host, box)


def test_del_with_the_api_server_unreachable(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    box = added(host, runtime, cluster)
    dead = host.tmp / "dead.kubeconfig"
    dead.write_text(json.dumps(kubeconfig_doc(f"http://127.0.0.1:{refused_port()}", token="t")))
    delete = call(runtime, "DEL", box, conf=runtime.conf | {"kubeconfig": str(dead)})
    assert delete.ok, (delete.doc, delete.stderr)
    assert_released(host, box)


def test_del_with_the_kubeconfig_gone(host: Host, runtime: Runtime, cluster: Cluster) -> None:
    box = added(host, runtime, cluster)
    delete = call(runtime, "DEL", box, conf=runtime.conf | {"kubeconfig": str(host.tmp / "gone")})
    assert delete.ok, (delete.doc, delete.stderr)
    assert_released(host, box)


@pytest.mark.parametrize("netns_given", [True, False], ids=["vanished-netns", "empty-netns"])
def test_del_after_the_netns_is_gone(
    host: Host, runtime: Runtime, cluster: Cluster, netns_given: bool
) -> None:
    box = added(host, runtime, cluster)
    subprocess.run(["ip", "netns", "del", box.netns], check=True)
    delete = runtime.call(
        "DEL",
        netns=box.netns if netns_given else "",
        cid=box.cid,
        namespace=box.namespace,
        pod=box.pod,
        uid=box.uid,
    )
    assert delete.ok, (delete.doc, delete.stderr)
    assert_released(host, box, netns_exists=False)


def test_del_of_a_container_never_added(host: Host, runtime: Runtime, cluster: Cluster) -> None:
    box = Sandbox(host.netns(), "feedface", cluster.namespace, "ghost", "")
    delete = call(runtime, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert_released(host, box)

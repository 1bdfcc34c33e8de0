"""ADD, CHECK and DEL through the installed binary for every CNI spec version
jaring speaks; CHECK reaches every delegate and notices drift."""

from __future__ import annotations

import subprocess

import pytest

from ..api.cluster import Cluster
from .conftest import Host, Runtime, call, sandbox

pytestmark = pytest.mark.root

VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del(host: Host, runtime: Runtime, cluster: Cluster, version: str) -> None:
    runtime.conf["cniVersion"] = version
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data")
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    assert add.doc["cniVersion"] == version
    assert set(host.links(box.netns)) == {"lo", "eth0", "net1"}
    check = call(runtime, "CHECK", box)
    if version.startswith("0.3."):
        # CHECK came with 0.4.0: the spec's answer for older configs is an error.
        assert check.code != 0
        assert check.doc["cniVersion"] == version
    else:
        assert check.ok, (check.doc, check.stderr)
        assert check.doc is None
    delete = call(runtime, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert set(host.links(box.netns)) == {"lo"}
    assert host.leases() == []
    assert host.host_veths() == []


@pytest.mark.parametrize("drift", ["attachment-removed", "address-removed"])
def test_check_notices_drift_in_an_attachment(
    host: Host, runtime: Runtime, cluster: Cluster, drift: str
) -> None:
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data")
    assert call(runtime, "ADD", box).ok
    assert call(runtime, "CHECK", box).ok
    if drift == "attachment-removed":
        subprocess.run(["ip", "-n", box.netns, "link", "del", "net1"], check=True)
    else:
        (address,) = host.links(box.netns)["net1"].addrs
        subprocess.run(["ip", "-n", box.netns, "addr", "del", address, "dev", "net1"], check=True)
    check = call(runtime, "CHECK", box)
    assert check.code != 0
    assert "net1" in check.doc["msg"] + check.doc.get("details", "")
    delete = call(runtime, "DEL", box)  # DEL still cleans up after drift
    assert delete.ok, (delete.doc, delete.stderr)
    assert host.leases() == []


def test_check_of_a_container_never_added_fails(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    box = sandbox(host, cluster, "web")
    check = call(runtime, "CHECK", box)
    assert check.code != 0
    assert check.doc["code"] == 3

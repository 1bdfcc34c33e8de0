"""DEL succeeds and leaks no lease when a delegate cannot DEL any more
because its host parts are gone: reference macvlan 1.1.1 fails "Link not
found" once its master is deleted (which also took the pod's macvlan links);
jaring sees the interfaces are gone and releases their IPAM itself."""

from __future__ import annotations

import subprocess

import pytest

from ..api.cluster import Cluster
from .conftest import Host, Runtime, call
from .test_jaring_contract_del_works_from_the_cache import added, assert_released

pytestmark = pytest.mark.root


def test_del_after_the_macvlan_master_is_deleted(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    box = added(host, runtime, cluster)
    subprocess.run(["ip", "link", "del", host.master], check=True)
    delete = call(runtime, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert_released(host, box)
    assert call(runtime, "DEL", box).ok  # and again


def test_a_delegate_that_fails_while_its_interface_is_still_there_still_fails(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    box = added(host, runtime, cluster)
    # Break only the cached config's master name: the link stays in the pod.
    for path in host.cache_dir.rglob("*.json"):
        path.write_text(path.read_text().replace(host.master, host.master + "x"))
    delete = call(runtime, "DEL", box)
    assert not delete.ok
    assert delete.doc["code"] == 100
    assert "net1" in host.links(box.netns)

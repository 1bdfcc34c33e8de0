"""GC (CNI 1.1) DELs every attachment of containers the runtime no longer
lists and prunes the cache (LESSONS #2); STATUS answers ready."""

from __future__ import annotations

import subprocess

import pytest

from ..api.cluster import Cluster
from .conftest import Host, Runtime, call, sandbox

pytestmark = pytest.mark.root


@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_gc_collects_what_the_runtime_no_longer_lists(
    host: Host, runtime: Runtime, cluster: Cluster, key: str
) -> None:
    runtime.conf["cniVersion"] = "1.1.0"
    cluster.nad("data", host.macvlan("data"))
    kept = sandbox(host, cluster, "kept", networks="data")
    stale = sandbox(host, cluster, "stale", networks="data,data")
    for box in (kept, stale):
        add = call(runtime, "ADD", box)
        assert add.ok, (add.doc, add.stderr)
    assert len(host.leases()) == 2 + 3
    kept_leases = set(host.leases())
    # The runtime lost the stale sandbox without a DEL (crash, reboot).
    subprocess.run(["ip", "netns", "del", stale.netns], check=True)

    gc = runtime.call_plugin_wide(
        "GC", conf=runtime.conf | {key: [{"containerID": kept.cid, "ifname": "eth0"}]}
    )
    assert gc.ok, (gc.doc, gc.stderr)
    assert len(host.leases()) == 2
    assert set(host.leases()) <= kept_leases
    assert set(host.links(kept.netns)) == {"lo", "eth0", "net1"}
    cached = sorted(p.stem for p in host.cache_dir.glob("*.json"))
    assert cached == [kept.cid]
    assert call(runtime, "CHECK", kept).ok


def test_status_is_ready(host: Host, runtime: Runtime) -> None:
    runtime.conf["cniVersion"] = "1.1.0"
    status = runtime.call_plugin_wide("STATUS")
    assert status.ok, (status.doc, status.stderr)

"""SR-IOV with a VF netdev: moved into the pod, renamed, MAC set; DEL puts it all back.

The VF netdev is a real veth end named in a fake sysfs tree (this kernel has
no netdevsim); the PF is the recording fake of the unit tests, so this proves
the namespace side: temp-name move, rename, MAC, IPAM, rollback and restore.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jaring.cni.errors import CniError
from jaring.cni.plugin import Request
from jaring.delegates.sriov import SriovPlugin
from jaring.delegates.vfcontrol import VfSettings

from ..unit.test_sriov_configures_vf_through_pf import ORIGINAL, VF, RecordingPf, fake_sysfs

pytestmark = pytest.mark.root


def sh(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Rig:
    plugin: SriovPlugin
    pf: RecordingPf
    netdev: str
    netns: str
    state: Path

    def request(self, command: str, **conf: object) -> Request:
        doc = {"cniVersion": "1.0.0", "name": "sriovnet", "type": "sriov", "deviceID": VF, **conf}
        return Request.build(
            command,
            json.dumps(doc).encode(),
            container_id="c9",
            netns=f"/run/netns/{self.netns}",
            ifname="net1",
        )

    def pod_links(self) -> dict[str, dict[str, object]]:
        out = json.loads(sh("ip", "-n", self.netns, "-j", "addr", "show") or "[]")
        return {item["ifname"]: item for item in out}

    def host_link(self) -> dict[str, object] | None:
        out = sh("ip", "-j", "link", "show", "dev", self.netdev, check=False)
        return json.loads(out)[0] if out.strip() else None


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    if os.geteuid() != 0:
        pytest.skip("needs root and real network namespaces")
    tag = uuid.uuid4().hex[:6]
    netdev, netns = f"jsv{tag}", f"jsn{tag}"
    sh("ip", "link", "add", netdev, "type", "veth", "peer", "name", f"{netdev}p")
    sh("ip", "link", "set", netdev, "address", "0e:00:00:00:aa:01")
    sh("ip", "netns", "add", netns)
    pf = RecordingPf()
    plugin = SriovPlugin(
        sysfs=fake_sysfs(tmp_path / "sys", netdev), control=pf, state_dir=tmp_path / "state"
    )
    try:
        yield Rig(plugin, pf, netdev, netns, tmp_path / "state")
    finally:
        sh("ip", "netns", "del", netns, check=False)
        sh("ip", "link", "del", netdev, check=False)
        sh("ip", "link", "del", f"{netdev}p", check=False)


STATIC = {"type": "static", "addresses": [{"address": "10.19.0.5/24", "gateway": "10.19.0.1"}]}


def test_vf_netdev_lands_in_pod_renamed_with_mac_and_ips(rig: Rig) -> None:
    result = rig.plugin.add(rig.request("ADD", mac="0e:00:00:00:bb:02", vlan=10, ipam=STATIC))
    pod = rig.pod_links()
    assert rig.host_link() is None
    assert pod["net1"]["address"] == "0e:00:00:00:bb:02"
    assert [a["local"] for a in pod["net1"]["addr_info"] if a["family"] == "inet"] == ["10.19.0.5"]
    assert "UP" in pod["net1"]["flags"]
    assert result.interfaces[0].mac == "0e:00:00:00:bb:02"
    assert rig.pf.vfs[1].vlan == 10


def test_del_restores_name_namespace_mac_and_vf_settings(rig: Rig) -> None:
    conf = {"mac": "0e:00:00:00:bb:02", "vlan": 10, "trust": "on", "ipam": STATIC}
    rig.plugin.add(rig.request("ADD", **conf))
    rig.plugin.delete(rig.request("DEL", **conf))
    host = rig.host_link()
    assert host is not None and host["address"] == "0e:00:00:00:aa:01"
    assert "net1" not in rig.pod_links()
    assert rig.pf.vfs[1] == ORIGINAL
    rig.plugin.delete(rig.request("DEL", **conf))  # and again: nothing left is success
    assert not list(rig.state.glob("*.json"))


def test_failed_add_returns_the_netdev_and_restores_the_vf(rig: Rig) -> None:
    bad = {"type": "static", "addresses": [{"address": "10.19.0.5/24", "gateway": "bogus"}]}
    with pytest.raises(CniError):
        rig.plugin.add(rig.request("ADD", mac="0e:00:00:00:bb:02", vlan=10, ipam=bad))
    host = rig.host_link()
    assert host is not None and host["address"] == "0e:00:00:00:aa:01"
    assert "net1" not in rig.pod_links()
    assert rig.pf.vfs[1] == ORIGINAL
    assert [c[2] for c in rig.pf.calls][-1] == ORIGINAL.only(
        VfSettings(mac="x", vlan=1, qos=0, proto="802.1q").changed()
    )


def test_del_after_pod_netns_vanished_restores_the_vf(rig: Rig) -> None:
    rig.plugin.add(rig.request("ADD", vlan=33, spoofchk="off"))
    sh("ip", "netns", "del", rig.netns)
    rig.plugin.delete(rig.request("DEL", vlan=33, spoofchk="off"))
    assert rig.pf.vfs[1] == ORIGINAL
    assert not list(rig.state.glob("*.json"))


def test_ifname_taken_in_pod_fails_and_leaves_the_vf_alone(rig: Rig) -> None:
    sh("ip", "-n", rig.netns, "link", "add", "net1", "type", "veth", "peer", "name", "x1")
    with pytest.raises(CniError, match="already exists"):
        rig.plugin.add(rig.request("ADD", vlan=10))
    assert rig.host_link() is not None
    assert rig.pf.vfs[1] == ORIGINAL

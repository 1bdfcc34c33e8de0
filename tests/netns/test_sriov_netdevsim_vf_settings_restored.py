"""SR-IOV VF settings through a real PF (netdevsim): set by ADD, read back, restored by DEL.

Kernel lab only (this machine has no netdevsim): a netdevsim PF with VFs,
the production `NetlinkVfControl`, and a fake sysfs tree naming VF 1 of that
PF as a userspace-driver VF (netdevsim VFs have no netdev in legacy mode).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from jaring.cni.plugin import Request
from jaring.delegates.sriov import SriovPlugin
from jaring.delegates.vfcontrol import NetlinkVfControl, VfSettings

pytestmark = [pytest.mark.root, pytest.mark.kernel]

NSIM = Path("/sys/bus/netdevsim")
VF_PCI = "0000:77:00.1"


@pytest.fixture
def pf() -> Iterator[str]:
    if os.geteuid() != 0 or not (NSIM / "new_device").exists():
        pytest.skip("needs netdevsim (run in the kernel lab)")
    dev_id = random.randint(100, 999)
    (NSIM / "new_device").write_text(f"{dev_id} 1")
    try:
        device = NSIM / "devices" / f"netdevsim{dev_id}"
        (device / "sriov_numvfs").write_text("4")
        names = sorted(p.name for p in (device / "net").iterdir())
        yield names[0]
    finally:
        (NSIM / "del_device").write_text(str(dev_id))


def fake_sysfs(root: Path, pf: str) -> Path:
    pf_dir = root / "devices" / "pci0000:77" / "0000:77:00.0"
    vf_dir = root / "devices" / "pci0000:77" / VF_PCI
    (pf_dir / "net" / pf).mkdir(parents=True)
    vf_dir.mkdir(parents=True)
    (root / "bus" / "pci" / "drivers" / "vfio-pci").mkdir(parents=True)
    (root / "bus" / "pci" / "devices").mkdir(parents=True)
    (root / "bus" / "pci" / "devices" / VF_PCI).symlink_to(vf_dir)
    (vf_dir / "physfn").symlink_to(pf_dir)
    (vf_dir / "driver").symlink_to(root / "bus" / "pci" / "drivers" / "vfio-pci")
    (pf_dir / "virtfn1").symlink_to(vf_dir)
    return root


def ip_vf(pf: str, index: int) -> dict[str, object]:
    """What iproute2 reports for VF `index`: vlan and qos (from vlan_list), address."""
    out = subprocess.run(
        ["ip", "-j", "link", "show", pf], capture_output=True, text=True, check=True
    )
    vfs: list[dict[str, object]] = json.loads(out.stdout)[0]["vfinfo_list"]
    vf = next(v for v in vfs if v["vf"] == index)
    vlans = vf.get("vlan_list")
    first = vlans[0] if isinstance(vlans, list) and vlans else {}
    return {**vf, "vlan": first.get("vlan", 0), "qos": first.get("qos", 0)}


def request(command: str, **conf: object) -> Request:
    doc = {"cniVersion": "1.1.0", "name": "nsim", "type": "sriov", "deviceID": VF_PCI, **conf}
    return Request.build(
        command, json.dumps(doc).encode(), container_id="k1", netns="/run/netns/none", ifname="net1"
    )


def test_netlink_control_reads_what_it_applies(pf: str) -> None:
    control = NetlinkVfControl()
    wanted = VfSettings(
        mac="0e:00:00:00:77:01", vlan=20, qos=2, spoofchk=False, trust=True, link_state="disable"
    )
    control.apply(pf=pf, vf=2, settings=wanted)
    got = control.read(pf=pf, vf=2).only(wanted.changed())
    assert got == wanted
    seen = ip_vf(pf, 2)
    assert (seen["vlan"], seen["address"]) == (20, "0e:00:00:00:77:01"), seen


def test_sriov_add_sets_and_del_restores_every_vf_setting(pf: str, tmp_path: Path) -> None:
    plugin = SriovPlugin(sysfs=fake_sysfs(tmp_path / "sys", pf), state_dir=tmp_path / "state")
    before = NetlinkVfControl().read(pf=pf, vf=1)
    conf = {
        "mac": "0e:00:00:00:77:02",
        "vlan": 30,
        "vlanQoS": 5,
        "spoofchk": "off",
        "trust": "on",
        "link_state": "enable",
        "min_tx_rate": 10,
        "max_tx_rate": 100,
    }
    result = plugin.add(request("ADD", **conf))
    assert result.interfaces[0].pci_id == VF_PCI
    during = ip_vf(pf, 1)
    assert (during["vlan"], during["qos"], during["address"]) == (30, 5, "0e:00:00:00:77:02"), (
        during
    )
    plugin.delete(request("DEL", **conf))
    after = NetlinkVfControl().read(pf=pf, vf=1)
    assert after == before
    plugin.delete(request("DEL", **conf))

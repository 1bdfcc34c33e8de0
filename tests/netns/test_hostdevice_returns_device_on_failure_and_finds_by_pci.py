"""host-device in real namespaces: a failed ADD returns the device; PCI and kernel-path lookup.

The device is a veth end; a fake sysfs tree maps a PCI address and a
/sys/devices path to it (the sysfs root is the plugin's parameter).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError
from jaring.cni.plugin import Request
from jaring.delegates.hostdevice import HostDevicePlugin

from ..difftest.harness import Side, sh

pytestmark = pytest.mark.root

PCI = "0000:5e:00.3"
KERNELPATH = "/sys/devices/pci0000:5d/0000:5d:00.0/0000:5e:00.3"


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    if os.geteuid() != 0:
        pytest.skip("needs root and real network namespaces")
    s = Side(tmp_path)
    try:
        s.create()
        yield s
    finally:
        s.destroy()


def fake_sysfs(root: Path, netdev: str) -> Path:
    device = root / KERNELPATH.removeprefix("/sys/")
    (device / "net" / netdev).mkdir(parents=True)
    (root / "bus" / "pci" / "devices").mkdir(parents=True)
    (root / "bus" / "pci" / "devices" / PCI).symlink_to(device)
    return root


def req(side: Side, command: str, **conf: Any) -> Request:
    doc = {"cniVersion": "1.1.0", "name": "hdnet", "type": "host-device", **conf}
    return Request.build(
        command,
        json.dumps(doc).encode(),
        container_id=side.container_id,
        netns=side.netns_path,
        ifname="net1",
    )


def in_host(name: str) -> bool:
    return bool(sh("ip", "link", "show", "dev", name, check=False).strip())


def test_failed_ipam_returns_the_device_under_its_name(side: Side) -> None:
    bad = {
        "type": "static",
        "addresses": [{"address": "10.56.0.7/24"}],
        "routes": [{"dst": "10.66.0.0/16", "gw": "10.77.0.1"}],
    }
    with pytest.raises(CniError, match="failed to add route"):
        HostDevicePlugin().add(req(side, "ADD", device=side.device, ipam=bad))
    assert in_host(side.device)
    assert "net1" not in sh("ip", "-n", side.netns, "link")


def test_ifname_taken_in_pod_leaves_the_device_in_the_host(side: Side) -> None:
    sh("ip", "-n", side.netns, "link", "add", "net1", "type", "veth", "peer", "name", "p1")
    with pytest.raises(CniError, match="already exists"):
        HostDevicePlugin().add(req(side, "ADD", device=side.device))
    assert in_host(side.device)


@pytest.mark.parametrize("key", ["pciBusID", "kernelpath", "runtimeConfig"])
def test_device_found_through_sysfs(side: Side, tmp_path: Path, key: str) -> None:
    plugin = HostDevicePlugin(sysfs=fake_sysfs(tmp_path / "sys", side.device))
    conf: dict[str, Any] = {
        "pciBusID": {"pciBusID": PCI},
        "kernelpath": {"kernelpath": KERNELPATH},
        "runtimeConfig": {"runtimeConfig": {"deviceID": PCI}},
    }[key]
    result = plugin.add(req(side, "ADD", **conf))
    assert result.interfaces[0].name == "net1"
    assert not in_host(side.device)
    plugin.delete(req(side, "DEL", **conf))
    assert in_host(side.device)


def test_pci_address_without_net_dir_is_a_clear_error(side: Side, tmp_path: Path) -> None:
    plugin = HostDevicePlugin(sysfs=fake_sysfs(tmp_path / "sys", side.device))
    with pytest.raises(CniError, match=r"no net directory under pci device 0000:00:01\.0"):
        plugin.add(req(side, "ADD", pciBusID="0000:00:01.0"))


def test_check_detects_a_changed_mac(side: Side) -> None:
    plugin = HostDevicePlugin()
    result = plugin.add(req(side, "ADD", device=side.device))
    prev = result.to_json("1.1.0")
    plugin.check(req(side, "CHECK", device=side.device, prevResult=prev))
    sh("ip", "-n", side.netns, "link", "set", "net1", "address", "0e:00:00:00:00:99")
    with pytest.raises(CniError, match="MAC"):
        plugin.check(req(side, "CHECK", device=side.device, prevResult=prev))
    plugin.delete(req(side, "DEL", device=side.device))

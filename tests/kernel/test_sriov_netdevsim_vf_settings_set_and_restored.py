"""SR-IOV on netdevsim: the native delegate sets VF settings through a real PF and restores them.

The oracle for "set" is iproute2: the same settings applied with
`ip link set PF vf 1 …` to a sibling VF must read back (`ip -d link show PF`)
exactly as the VF jaring configured. DEL must give back the VF's settings as
they were before ADD (non-default ones, and a fresh VF's zeros). In switchdev
mode a VF's representor stands in for its netdev and really moves into the pod
and back; in legacy mode a VF has no netdev, like a DPDK VF on vfio-pci, or a
host dummy link is named as its netdev so settings and the move go together.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jaring.cni import skel
from jaring.delegates.sriov import STATE_DIR, SriovPlugin

from ..difftest.harness import VENV_BIN, sh
from .simnic import SimNic, link, vf_pci, wait_for

pytestmark = [pytest.mark.root, pytest.mark.kernel, pytest.mark.usefixtures("netdevsim_kernel")]

STATIC = {"type": "static", "addresses": [{"address": "10.99.0.5/24", "gateway": "10.99.0.1"}]}
# Non-default settings a VF has before ADD, so restoring is visible.
BEFORE = (
    *("mac", "02:5e:00:00:00:01", "vlan", "5", "qos", "1"),
    *("spoofchk", "on", "trust", "off", "state", "disable"),
    *("min_tx_rate", "5", "max_tx_rate", "50"),
)
SETTINGS: dict[str, Any] = {
    "mac": "0e:5e:00:00:00:11",
    "vlan": 100,
    "vlanQoS": 3,
    "spoofchk": "off",
    "trust": "on",
    "link_state": "enable",
    "min_tx_rate": 10,
    "max_tx_rate": 100,
}
# The same settings as `ip link set PF vf N …` arguments (the oracle).
SETTINGS_IP = (
    *("mac", "0e:5e:00:00:00:11", "vlan", "100", "qos", "3"),
    *("spoofchk", "off", "trust", "on", "state", "enable"),
    *("min_tx_rate", "10", "max_tx_rate", "100"),
)


@dataclass
class Pod:
    """A pod netns and where the delegate keeps its state; `how` runs the delegate."""

    netns: str
    container_id: str
    tree: Path
    state_dir: Path
    how: str  # "inproc": SriovPlugin over `tree`; "bin": jaring-sriov with `tree` as /sys

    @property
    def path(self) -> str:
        return f"/run/netns/{self.netns}"

    def run(self, command: str, conf: dict[str, Any], prev: Any = None) -> tuple[int, Any]:
        doc = {"cniVersion": "1.1.0", "name": "sriovnet", "type": "sriov", **conf}
        if prev is not None:
            doc["prevResult"] = prev
        environ = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.path,
            "CNI_IFNAME": "net1",
            "CNI_PATH": "/usr/lib/cni",
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        stdin = json.dumps(doc).encode()
        if self.how == "inproc":
            plugin = SriovPlugin(sysfs=self.tree, state_dir=self.state_dir)
            code, out = skel.run(plugin, environ=environ, stdin=stdin)
        else:
            # The executable reads the real /sys: show it the tree in a private mount ns.
            script = 'mount --bind "$0" /sys/bus/pci/devices && exec "$1"'
            devices = self.tree / "bus" / "pci" / "devices"
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
            argv += [str(devices), str(VENV_BIN / "jaring-sriov")]
            done = subprocess.run(argv, input=stdin, env=environ, capture_output=True, check=False)
            code, out = done.returncode, done.stdout
        return code, (json.loads(out) if out.strip() else None)

    def state_file(self) -> Path:
        return self.state_dir / f"{self.container_id}-net1.json"


@pytest.fixture
def nic_factory() -> Iterator[Any]:
    made: list[SimNic] = []

    def make(*, vfs: int, switchdev: bool) -> SimNic:
        nic = SimNic(vfs=vfs, switchdev=switchdev)
        made.append(nic)
        nic.create()
        return nic

    try:
        yield make
    finally:
        for nic in made:
            nic.destroy()


@pytest.fixture
def pod_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Pod] = []

    def make(
        nic: SimNic,
        *,
        how: str = "inproc",
        driver: str = "netdevsim",
        netdevs: dict[int, str] | None = None,
    ) -> Pod:
        tag = uuid.uuid4().hex[:6]
        tree = nic.pci_tree(tmp_path / f"sys{tag}", driver=driver, netdevs=netdevs)
        state_dir = STATE_DIR if how == "bin" else tmp_path / f"state{tag}"
        pod = Pod(f"jkn{tag}", f"cid{tag}", tree, state_dir, how)
        sh("ip", "netns", "add", pod.netns)
        made.append(pod)
        return pod

    try:
        yield make
    finally:
        for pod in made:
            sh("ip", "netns", "del", pod.netns, check=False)
            pod.state_file().unlink(missing_ok=True)


@pytest.fixture
def dummy() -> Iterator[Any]:
    """Make host dummy links standing in for VF netdevs: (name, MAC); deleted afterwards."""
    made: list[str] = []

    def make() -> tuple[str, str]:
        name = f"jvd{uuid.uuid4().hex[:6]}"
        sh("ip", "link", "add", name, "type", "dummy")
        made.append(name)
        found = link(name)
        assert found is not None
        return name, found["address"]

    try:
        yield make
    finally:
        for name in made:  # gone already when it was still in a deleted pod netns
            sh("ip", "link", "del", name, check=False)


def add_ok(pod: Pod, conf: dict[str, Any]) -> Any:
    code, result = pod.run("ADD", conf)
    assert code == 0, result
    return result


def del_twice_restores(pod: Pod, nic: SimNic, conf: dict[str, Any], before: Any, vf: int) -> None:
    for _ in range(2):  # the second DEL finds nothing left and still succeeds
        code, out = pod.run("DEL", conf)
        assert code == 0, out
        assert nic.vf(vf) == before
        assert not pod.state_file().exists()


@pytest.mark.parametrize("how", ["inproc", "bin"])
def test_dpdk_vf_settings_set_through_pf_and_restored(
    how: str, nic_factory: Any, pod_factory: Any
) -> None:
    nic = nic_factory(vfs=2, switchdev=False)  # legacy mode: VFs have no netdev
    pod = pod_factory(nic, how=how, driver="vfio-pci")
    for vf in (0, 1):
        nic.set_vf(vf, *BEFORE)
    before = nic.vf(0)
    conf = {"deviceID": vf_pci(0), **SETTINGS, "ipam": STATIC}

    result = add_ok(pod, conf)

    assert result["interfaces"] == [
        {"name": "net1", "mac": SETTINGS["mac"], "sandbox": pod.path, "pciID": vf_pci(0)}
    ]
    assert [ip["address"] for ip in result["ips"]] == ["10.99.0.5/24"]
    nic.set_vf(1, *SETTINGS_IP)
    assert nic.vf(0) == nic.vf(1)  # jaring set exactly what iproute2 sets
    assert nic.vf(0) != before
    assert link("net1", pod.netns) is None  # nothing to move for a DPDK VF
    code, out = pod.run("CHECK", conf, prev=result)
    assert code == 0, out
    del_twice_restores(pod, nic, conf, before, 0)


def test_fresh_vf_settings_set_and_zeros_restored(nic_factory: Any, pod_factory: Any) -> None:
    nic = nic_factory(vfs=2, switchdev=False)
    pod = pod_factory(nic, driver="vfio-pci")
    before = nic.vf(0)  # a fresh VF: zero MAC, no VLAN, no rate, link state auto
    conf = {"deviceID": vf_pci(0), **SETTINGS}

    result = add_ok(pod, conf)

    nic.set_vf(1, *SETTINGS_IP)
    assert nic.vf(0) == nic.vf(1)
    code, out = pod.run("CHECK", conf, prev=result)
    assert code == 0, out
    del_twice_restores(pod, nic, conf, before, 0)


def test_vf_802_1ad_vlan_set_and_restored(nic_factory: Any, pod_factory: Any) -> None:
    nic = nic_factory(vfs=2, switchdev=False)
    pod = pod_factory(nic, driver="vfio-pci")
    before = nic.vf(0)
    conf = {"deviceID": vf_pci(0), "vlan": 200, "vlanQoS": 2, "vlanProto": "802.1ad"}

    result = add_ok(pod, conf)

    nic.set_vf(1, "vlan", "200", "qos", "2", "proto", "802.1ad")
    assert nic.vf(0) == nic.vf(1)
    code, out = pod.run("CHECK", conf, prev=result)
    assert code == 0, out
    del_twice_restores(pod, nic, conf, before, 0)


def test_vf_netdev_moves_into_pod_and_all_is_restored_on_del(
    nic_factory: Any, pod_factory: Any, dummy: Any
) -> None:
    nic = nic_factory(vfs=2, switchdev=False)
    netdev, host_mac = dummy()  # VF 0's netdev; its settings go through the real PF
    pod = pod_factory(nic, netdevs={0: netdev})
    for vf in (0, 1):
        nic.set_vf(vf, *BEFORE)
    before = nic.vf(0)
    conf = {"deviceID": vf_pci(0), **SETTINGS, "ipam": STATIC}

    result = add_ok(pod, conf)

    inside = link("net1", pod.netns)
    assert inside is not None and link(netdev) is None
    assert inside["address"] == SETTINGS["mac"] == result["interfaces"][0]["mac"]
    assert "UP" in inside["flags"]
    assert inet(inside) == ["10.99.0.5/24"]
    nic.set_vf(1, *SETTINGS_IP)
    assert nic.vf(0) == nic.vf(1)
    code, out = pod.run("CHECK", conf, prev=result)
    assert code == 0, out

    del_twice_restores(pod, nic, conf, before, 0)
    back = link(netdev)
    assert back is not None and back["address"] == host_mac
    assert link("net1", pod.netns) is None


def test_failed_add_restores_vf_and_keeps_netdev_in_host(
    nic_factory: Any, pod_factory: Any, dummy: Any
) -> None:
    nic = nic_factory(vfs=1, switchdev=False)
    netdev, host_mac = dummy()
    pod = pod_factory(nic, netdevs={0: netdev})
    nic.set_vf(0, *BEFORE)
    before = nic.vf(0)
    sh("ip", "-n", pod.netns, "link", "add", "net1", "type", "dummy")  # the name is taken

    code, out = pod.run("ADD", {"deviceID": vf_pci(0), **SETTINGS, "ipam": STATIC})

    assert code != 0, out
    assert nic.vf(0) == before
    back = link(netdev)
    assert back is not None and back["address"] == host_mac
    assert not pod.state_file().exists()


# netdevsim refuses VF settings through the PF in switchdev mode (EOPNOTSUPP), so
# these configs move the representor and configure IPs only.


def test_switchdev_representor_moves_into_pod_and_returns_on_del(
    nic_factory: Any, pod_factory: Any
) -> None:
    nic = nic_factory(vfs=2, switchdev=True)
    pod = pod_factory(nic)
    rep = nic.reps[1]
    host_mac = link(rep)["address"]  # type: ignore[index]  # made by SimNic.create
    conf = {"deviceID": vf_pci(1), "ipam": STATIC}

    result = add_ok(pod, conf)

    inside = link("net1", pod.netns)
    assert inside is not None and link(rep) is None
    assert inside["address"] == host_mac == result["interfaces"][0]["mac"]
    assert inet(inside) == ["10.99.0.5/24"]
    code, out = pod.run("CHECK", conf, prev=result)
    assert code == 0, out
    for _ in range(2):
        code, out = pod.run("DEL", conf)
        assert code == 0, out
        back = link(rep)
        assert back is not None and back["address"] == host_mac
        assert link("net1", pod.netns) is None


def test_del_after_pod_netns_vanished_renames_representor_back(
    nic_factory: Any, pod_factory: Any
) -> None:
    nic = nic_factory(vfs=1, switchdev=True)
    pod = pod_factory(nic)
    rep = nic.reps[0]
    conf = {"deviceID": vf_pci(0), "ipam": STATIC}
    add_ok(pod, conf)

    sh("ip", "netns", "del", pod.netns)
    # The kernel hands a device netdev of a dying netns back to the host under its
    # pod name; sysfs renames the VF's net/ entry with it, and so does our tree.
    wait_for("the representor back in the host", lambda: len(nic.netdevs()) == 2, timeout=8)
    (returned,) = (name for name in nic.netdevs() if name != nic.pf)
    assert returned != rep
    net = pod.tree / "bus" / "pci" / "devices" / vf_pci(0) / "net"
    (net / rep).rename(net / returned)

    for _ in range(2):
        code, out = pod.run("DEL", conf)
        assert code == 0, out
        assert link(rep) is not None and link(returned) is None
        assert not pod.state_file().exists()


def inet(info: dict[str, Any]) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"] if a["family"] == "inet"]

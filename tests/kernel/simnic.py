"""A netdevsim SR-IOV NIC for the SR-IOV delegate: real PF, real VF settings, PCI-shaped names.

netdevsim gives a PF netdev whose VFs' MAC/VLAN/spoofchk/trust/rate/link state
are set through it (`ip link set PF vf N …`), and in switchdev mode one
representor netdev per VF that can move between namespaces. netdevsim is not
a PCI device, so `pci_tree` writes the PCI sysfs layout sriov-cni reads
(`bus/pci/devices/<vf>/physfn`, `virtfnN`, `net/<name>`, `driver`) naming
these real netdevs; the delegate is pointed at it as its sysfs root.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..difftest.harness import sh

BUS = Path("/sys/bus/netdevsim")
PF_PCI = "0000:5e:00.0"


def vf_pci(index: int) -> str:
    return f"0000:5e:00.{index + 1}"


def wait_for(what: str, probe: Any, timeout: float = 20.0) -> Any:
    """Poll `probe()` until it returns something truthy, against a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class SimNic:
    """One netdevsim device: PF netdev, VFs, representors; `destroy` removes it all."""

    vfs: int
    switchdev: bool
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    dev_id: int = 0
    pf: str = ""
    reps: dict[int, str] = field(default_factory=dict)  # VF index -> representor name

    @property
    def sysdir(self) -> Path:
        return BUS / "devices" / f"netdevsim{self.dev_id}"

    def netdevs(self) -> list[str]:
        """This device's netdevs in the host netns (sysfs shows only those)."""
        net = self.sysdir / "net"
        return sorted(p.name for p in net.iterdir()) if net.is_dir() else []

    def create(self) -> None:
        taken = {p.name for p in (BUS / "devices").iterdir()}
        ids = [i for i in range(100, 1000) if f"netdevsim{i}" not in taken]
        self.dev_id = random.choice(ids)
        (BUS / "new_device").write_text(f"{self.dev_id} 1")
        first = wait_for("netdevsim PF netdev", self.netdevs)[0]
        self.pf = f"jpf{self.tag}"
        sh("ip", "link", "set", first, "name", self.pf)
        (self.sysdir / "sriov_numvfs").write_text(str(self.vfs))
        if not self.switchdev:
            return
        devlink = f"netdevsim/netdevsim{self.dev_id}"
        sh("devlink", "dev", "eswitch", "set", devlink, "mode", "switchdev")
        wait_for("VF representors", lambda: len(self.netdevs()) == self.vfs + 1)
        for name in self.netdevs():
            port = Path(f"/sys/class/net/{name}/phys_port_name").read_text().strip()
            found = re.fullmatch(r"pf\d+vf(\d+)", port)
            if found:
                index = int(found.group(1))
                self.reps[index] = f"jr{self.tag}{index}"
                sh("ip", "link", "set", name, "name", self.reps[index])

    def destroy(self) -> None:
        if self.dev_id and self.sysdir.exists():
            # Removes the PF, the VFs and every representor, in whatever netns it is.
            (BUS / "del_device").write_text(str(self.dev_id))

    def vf(self, index: int) -> dict[str, Any]:
        """VF `index` as `ip -d link show PF` reports it (no counters)."""
        info = json.loads(sh("ip", "-j", "-d", "link", "show", "dev", self.pf))[0]
        for vf in info.get("vfinfo_list", []):
            if vf["vf"] == index:
                keep = ("address", "vlan_list", "rate", "spoofchk", "link_state", "trust")
                return {key: vf.get(key) for key in keep}
        raise AssertionError(f"VF {index} not reported by {self.pf}")

    def set_vf(self, index: int, *args: str) -> None:
        sh("ip", "link", "set", "dev", self.pf, "vf", str(index), *args)

    def pci_tree(
        self, root: Path, *, driver: str, netdevs: Mapping[int, str] | None = None
    ) -> Path:
        """A sysfs root whose PCI devices are this PF and its VFs (relative links only).

        A VF's netdev is `netdevs[index]`, by default its representor; a VF
        without one has no `net/`, like a VF bound to vfio-pci for DPDK.
        """
        names = self.reps if netdevs is None else netdevs
        devices = root / "bus" / "pci" / "devices"
        (root / "bus" / "pci" / "drivers" / driver).mkdir(parents=True)
        (devices / PF_PCI / "net" / self.pf).mkdir(parents=True)
        for index in range(self.vfs):
            vf = devices / vf_pci(index)
            vf.mkdir()
            (vf / "physfn").symlink_to(f"../{PF_PCI}")
            (vf / "driver").symlink_to(f"../../drivers/{driver}")
            (devices / PF_PCI / f"virtfn{index}").symlink_to(f"../{vf_pci(index)}")
            if index in names:
                (vf / "net" / names[index]).mkdir(parents=True)
        return root


def link(name: str, netns: str = "") -> dict[str, Any] | None:
    """`ip -j addr show dev NAME` (in `netns`), or None when there is no such link."""
    prefix = ("-n", netns) if netns else ()
    done = subprocess.run(
        ["ip", *prefix, "-j", "addr", "show", "dev", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return None
    found: dict[str, Any] = json.loads(done.stdout)[0]
    return found

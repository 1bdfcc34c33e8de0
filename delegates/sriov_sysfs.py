"""SR-IOV sysfs lookups: a VF's netdev, its PF, its VF index, its driver.

Pure reads under a sysfs root given by the caller (production `/sys`, tests a
fake tree), used by the SR-IOV delegate (sriov-cni's `deviceID` semantics,
SPECS.md native delegates). Errors name the PCI address that failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jaring.cni.errors import CniError, Code


@dataclass(frozen=True)
class VfInfo:
    """What sysfs says about one VF."""

    pci: str
    pf_pci: str
    pf_netdev: str
    vf_index: int
    netdev: str | None  # None: bound to a userspace driver (vfio-pci, DPDK)
    driver: str | None


def _one_netdev(dev: Path) -> str | None:
    net = dev / "net"
    if not net.is_dir():
        return None
    names = sorted(p.name for p in net.iterdir())
    return names[0] if names else None


def lookup_vf(pci: str, sysfs: Path = Path("/sys")) -> VfInfo:
    """Resolve a VF by PCI address; raise CniError naming `pci` if it is not a VF."""
    dev = sysfs / "bus" / "pci" / "devices" / pci
    if not dev.exists():
        raise CniError(Code.INVALID_CONFIG, f"SR-IOV device {pci} not found", str(dev))
    physfn = dev / "physfn"
    if not physfn.exists():
        raise CniError(
            Code.INVALID_CONFIG, f"PCI device {pci} is not an SR-IOV VF (no physfn)", str(dev)
        )
    pf_dir = physfn.resolve()
    pf_netdev = _one_netdev(pf_dir)
    if pf_netdev is None:
        raise CniError(Code.INVALID_CONFIG, f"PF of VF {pci} has no netdev", str(pf_dir))
    vf_index = _vf_index(pci, dev.resolve(), pf_dir)
    driver_link = dev / "driver"
    driver = os.path.basename(os.readlink(driver_link)) if driver_link.is_symlink() else None
    return VfInfo(pci, pf_dir.name, pf_netdev, vf_index, _one_netdev(dev), driver)


def _vf_index(pci: str, vf_dir: Path, pf_dir: Path) -> int:
    # The PF lists its VFs as virtfnN symlinks; N is the index `ip link set vf N` takes.
    for link in pf_dir.glob("virtfn*"):
        suffix = link.name[len("virtfn") :]
        if suffix.isdigit() and link.resolve() == vf_dir:
            return int(suffix)
    raise CniError(
        Code.INVALID_CONFIG, f"VF {pci} not listed among its PF's virtfn links", str(pf_dir)
    )

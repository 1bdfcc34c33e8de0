"""What this kernel can do, found by trying it; and dummy-mastered differential sides.

Used by the kernel-lab conftest to skip cleanly outside the VM. A probe makes
a uniquely named link and always deletes it again, so the host stays clean.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from ..difftest.harness import Side, sh

NETDEVSIM_BUS = Path("/sys/bus/netdevsim")


def _ip(*argv: str) -> bool:
    return subprocess.run(["ip", *argv], capture_output=True, check=False).returncode == 0


def can_make(kind: str) -> bool:
    """Whether a `kind` link (dummy, ipvlan, vlan) can be made here: make one, delete it."""
    name = f"jkp{uuid.uuid4().hex[:6]}"
    lower = f"{name}l"
    try:
        if kind == "dummy":
            return _ip("link", "add", name, "type", "dummy")
        if not _ip("link", "add", lower, "type", "veth", "peer", "name", f"{lower}p"):
            return False
        extra = ("id", "7") if kind == "vlan" else ()
        return _ip("link", "add", "link", lower, name, "type", kind, *extra)
    finally:
        for leftover in (name, lower):
            _ip("link", "del", leftover)


def has_netdevsim() -> bool:
    return (NETDEVSIM_BUS / "new_device").exists()


def make_dummy_side(side: Side) -> None:
    """The side's netns and an up dummy link as its master (no device veth)."""
    sh("ip", "netns", "add", side.netns)
    sh("ip", "link", "add", side.master, "type", "dummy")
    sh("ip", "link", "set", side.master, "up")


def drop_side(side: Side) -> None:
    """Remove what `make_dummy_side` and the plugins made (no masq chains: no ipMasq here).

    `Side.destroy` also sweeps iptables and ip6tables, seconds per side in the VM.
    """
    for pod in side.pods:
        sh("ip", "netns", "del", pod, check=False)
    for name in (side.bridge, side.device, side.master):
        sh("ip", "link", "del", name, check=False)

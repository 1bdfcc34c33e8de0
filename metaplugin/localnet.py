"""Host-side parts of clusterless mode: pod network namespaces and the links NADs need.

Owns named netns (`ip netns`), the veth pair that stands in for a missing
macvlan/ipvlan master, and the reference counts (`root/.jaring/hostparts.json`)
that remove a part jaringctl made when the last pod using it goes down.
Called by `ctl_runtime`; `ip` and /proc, /sys do the work (no pyroute2 here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from jaring.cni.errors import CniError, Code

from .ctl_store import write_atomic

NETNS_DIR = Path("/var/run/netns")
SYS_NET = Path("/sys/class/net")
PROC_SYS = Path("/proc/sys")
FORWARDING = "net/ipv4/ip_forward"
FORWARDING_V6 = "net/ipv6/conf/all/forwarding"
# The bridge plugin's isGateway turns forwarding on for the gateway's family.
GATEWAY_SYSCTLS = (FORWARDING, FORWARDING_V6)
NET_ADDR_SET = "3"  # /sys/class/net/*/addr_assign_type: the address was set by a user
# What host-local keeps in a network's directory besides leases.
IPAM_BOOKKEEPING = ("lock",)
IPAM_BOOKKEEPING_PREFIX = "last_reserved_ip."

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise CniError(
            Code.IO, f"{argv[0]} is not installed", "apt-get install iproute2 iputils-ping"
        ) from None
    except subprocess.TimeoutExpired:
        raise CniError(Code.IO, f"{' '.join(argv)} did not finish in 30 s") from None


class Host:
    """The host's network namespace as `ip` sees it."""

    def __init__(
        self,
        *,
        run: Runner = run_command,
        netns_dir: Path = NETNS_DIR,
        sys_net: Path = SYS_NET,
        proc_sys: Path = PROC_SYS,
    ) -> None:
        self.run = run
        self.netns_dir = netns_dir
        self.sys_net = sys_net
        self.proc_sys = proc_sys

    def ip(self, *args: str) -> str:
        done = self.run(["ip", *args])
        if done.returncode != 0:
            reason = " ".join((done.stderr or done.stdout or "failed").split())
            raise CniError(Code.IO, f"ip {' '.join(args)}: {reason}")
        return done.stdout

    # namespaces
    def netns_path(self, name: str) -> Path:
        return self.netns_dir / name

    def netns_exists(self, name: str) -> bool:
        return self.netns_path(name).exists()

    def netns_add(self, name: str) -> None:
        self.ip("netns", "add", name)
        self.ip("-n", name, "link", "set", "lo", "up")

    def netns_delete(self, name: str) -> None:
        """Gone already is fine (DEL semantics)."""
        if self.netns_exists(name):
            self.ip("netns", "delete", name)

    # links
    def link_exists(self, name: str) -> bool:
        return (self.sys_net / name).exists()

    def bridge_ports(self, name: str) -> list[str]:
        try:
            return sorted(os.listdir(self.sys_net / name / "brif"))
        except OSError:
            return []

    def pin_mac(self, name: str) -> bool:
        """Fix a link's current MAC; True when it was still kernel-chosen.

        A bridge created without an address takes its lowest port's MAC and
        changes it as ports come and go; set once, it stays.
        """
        try:
            assign_type = (self.sys_net / name / "addr_assign_type").read_text().strip()
            mac = (self.sys_net / name / "address").read_text().strip()
        except OSError:
            return False
        if assign_type == NET_ADDR_SET:
            return False
        self.ip("link", "set", "dev", name, "address", mac)
        return True

    def add_veth(self, name: str, peer: str) -> None:
        self.ip("link", "add", name, "type", "veth", "peer", "name", peer)
        try:
            self.ip("link", "set", name, "up")
            self.ip("link", "set", peer, "up")
        except CniError:
            self.delete_link(name)
            raise

    def delete_link(self, name: str) -> None:
        if self.link_exists(name):
            self.ip("link", "delete", name)

    # sysctl
    def has_sysctl(self, key: str) -> bool:
        return (self.proc_sys / key).exists()

    def sysctl(self, key: str) -> str:
        try:
            return (self.proc_sys / key).read_text().strip()
        except OSError as exc:
            raise CniError(Code.IO, f"cannot read {key}: {exc}") from None

    def set_sysctl(self, key: str, value: str) -> None:
        try:
            (self.proc_sys / key).write_text(value)
        except OSError as exc:
            raise CniError(Code.IO, f"cannot set {key}: {exc}") from None


def veth_peer_name(master: str) -> str:
    """A short stable name for the other end of a stand-in master (<= 15 chars)."""
    return "jrp" + hashlib.sha256(master.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Need:
    """A host part a pod's networks need: a master link, a bridge, forwarding, an IPAM dir."""

    kind: str  # "master" | "bridge" | "forwarding" | "ipamdir"
    name: str  # link name, sysctl key or directory
    why: str  # for messages: "macvlan master of NAD ns/name"


@dataclass(frozen=True)
class Part:
    """A host part jaringctl made (or that a plugin made on its behalf), and its users."""

    kind: str
    name: str
    peer: str = ""
    restore: str = ""
    users: tuple[str, ...] = ()


class HostParts:
    """Reference-counted host parts: made by the first pod needing them, removed with the last."""

    def __init__(self, path: Path, host: Host) -> None:
        self.path = path
        self.host = host

    def load(self) -> list[Part]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise CniError(Code.IO, f"{self.path}: unreadable: {exc}") from None
        parts = []
        for raw in doc.get("parts", []) if isinstance(doc, dict) else []:
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                parts.append(
                    Part(
                        kind=str(raw.get("kind")),
                        name=raw["name"],
                        peer=str(raw.get("peer") or ""),
                        restore=str(raw.get("restore") or ""),
                        users=tuple(str(u) for u in raw.get("users") or ()),
                    )
                )
        return parts

    def _save(self, parts: Sequence[Part]) -> None:
        doc: dict[str, Any] = {"parts": [asdict(p) for p in parts]}
        for raw in doc["parts"]:
            raw["users"] = list(raw["users"])
        write_atomic(self.path, json.dumps(doc, indent=2) + "\n")

    def acquire(self, user: str, needs: Sequence[Need]) -> list[str]:
        """Make what is missing, count `user` on what is ours; messages of what was done.

        Every part is recorded, in one write, before the first is made, so an
        interruption leaves them all known and removable. On failure, what
        this call made is undone.
        """
        messages: list[str] = []
        parts = self.load()
        to_make: list[Part] = []
        for need in needs:
            index = next(
                (i for i, p in enumerate(parts) if (p.kind, p.name) == (need.kind, need.name)),
                None,
            )
            if index is not None:
                part = parts[index]
                if user not in part.users:
                    parts[index] = replace(part, users=(*part.users, user))
                if need.kind == "master" and not self.host.link_exists(need.name):
                    to_make.append(part)
                    messages.append(
                        f"host: re-created veth pair {need.name}/{part.peer} ({need.why})"
                    )
                continue
            part_or_none, message = self._new_part(user, need)
            if part_or_none is not None:
                parts.append(part_or_none)
                if need.kind == "master":
                    to_make.append(part_or_none)
            if message:
                messages.append(message)
        self._save(parts)
        try:
            for part in to_make:
                self.host.add_veth(part.name, part.peer)
        except CniError:
            self.release(user)
            raise
        return messages

    def _new_part(self, user: str, need: Need) -> tuple[Part | None, str | None]:
        """A part to record for a need nobody recorded yet; None when the host has it."""
        host = self.host
        if need.kind == "master":
            if host.link_exists(need.name):
                return None, None
            peer = veth_peer_name(need.name)
            return Part(kind="master", name=need.name, peer=peer, users=(user,)), (
                f"host: created veth pair {need.name}/{peer} as the {need.why} "
                "(no such link here; removed when its last pod goes down)"
            )
        if need.kind == "bridge":
            if host.link_exists(need.name):
                return None, None
            return Part(kind="bridge", name=need.name, users=(user,)), (
                f"host: bridge {need.name} ({need.why}) is new: the bridge plugin creates it, "
                "jaringctl removes it when its last pod goes down"
            )
        if need.kind == "forwarding":
            if not host.has_sysctl(need.name) or host.sysctl(need.name) != "0":
                return None, None  # already on, or no such family on this kernel
            return Part(kind="forwarding", name=need.name, restore="0", users=(user,)), (
                f"host: {need.why} turns on {need.name.replace('/', '.')}; "
                "jaringctl sets it back to 0 when its last pod goes down"
            )
        if need.kind == "ipamdir":
            if Path(need.name).exists():
                return None, None
            return Part(kind="ipamdir", name=need.name, users=(user,)), None
        raise CniError(Code.OTHER, f"unknown host part kind {need.kind!r}")

    def settle(self, user: str) -> None:
        """After `user`'s ADD: pin the MAC of the bridges made for it.

        The reference bridge plugin's CHECK compares the bridge MAC with the
        one ADD reported; without this the next pod on the bridge breaks it.
        """
        for part in self.load():
            if part.kind == "bridge" and user in part.users and self.host.link_exists(part.name):
                self.host.pin_mac(part.name)

    def release(self, user: str) -> list[str]:
        """Drop `user`; remove every part nobody uses any more. Messages of what was done."""
        parts = self.load()
        kept: list[Part] = []
        freed: list[Part] = []
        for part in parts:
            if user not in part.users:
                kept.append(part)
                continue
            users = tuple(u for u in part.users if u != user)
            if users:
                kept.append(replace(part, users=users))
            else:
                freed.append(part)
        if not freed:
            if len(kept) != len(parts) or kept != parts:
                self._save(kept)
            return []
        messages: list[str] = []
        failed: list[Part] = []
        # Links before the sysctl: forwarding goes back only once the bridges are gone.
        for part in sorted(freed, key=lambda p: p.kind == "forwarding"):
            try:
                message = self._remove(part)
            except CniError as exc:
                failed.append(part)
                messages.append(f"host: could not remove {part.kind} {part.name}: {exc}")
                continue
            if message:
                messages.append(message)
        self._save([*kept, *failed])
        return messages

    def _remove(self, part: Part) -> str | None:
        host = self.host
        if part.kind == "master":
            if not host.link_exists(part.name):
                return None
            host.delete_link(part.name)  # deleting one end of a veth deletes both
            return f"host: removed veth pair {part.name}/{part.peer}"
        if part.kind == "bridge":
            if not host.link_exists(part.name):
                return None
            ports = host.bridge_ports(part.name)
            if ports:
                return (
                    f"host: left bridge {part.name} in place: it still has ports "
                    f"({', '.join(ports)}) that jaringctl did not make"
                )
            host.delete_link(part.name)
            return f"host: removed bridge {part.name}"
        if part.kind == "forwarding":
            if host.sysctl(part.name) != part.restore:
                host.set_sysctl(part.name, part.restore)
                return f"host: set {part.name.replace('/', '.')} back to {part.restore}"
            return None
        if part.kind == "ipamdir":
            return _remove_ipam_dir(Path(part.name))
        return None


def _remove_ipam_dir(path: Path) -> str | None:
    """host-local's directory for a network, only when it holds no lease."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CniError(Code.IO, f"cannot list {path}: {exc}") from None
    leases = [
        n for n in names if n not in IPAM_BOOKKEEPING and not n.startswith(IPAM_BOOKKEEPING_PREFIX)
    ]
    if leases:
        return f"host: left {path}: it still holds leases ({', '.join(sorted(leases))})"
    shutil.rmtree(path, ignore_errors=True)
    return None

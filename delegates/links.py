"""Links as the link plugins see them: snapshots, lookups, moves, names.

Owns the reference plugins' link discipline for bridge, macvlan, ipvlan,
host-device and sriov: a link is made under a temporary name in the host,
moved into the pod and renamed there; lookups by name return None instead of
raising, so DEL can treat "already gone" as success (SPEC.md "DEL").
"""

from __future__ import annotations

import errno
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jaring.cni.errors import CniError, Code

from .netns import Netlink

IFF_UP = 0x1
IFF_PROMISC = 0x100
IFNAMSIZ = 15  # usable characters of a Linux interface name
DATA_KEYS = ("IFLA_BR_VLAN_FILTERING", "IFLA_MACVLAN_MODE", "IFLA_IPVLAN_MODE")


@dataclass(frozen=True)
class Link:
    """One link as netlink reports it."""

    index: int
    name: str
    kind: str
    mtu: int
    mac: str
    master: int  # 0: no master
    parent: int  # IFLA_LINK (macvlan/ipvlan/vlan lower device, veth peer); 0: none
    flags: int
    operstate: str
    data: tuple[tuple[str, Any], ...] = ()  # IFLA_INFO_DATA attributes, e.g. macvlan mode

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def promisc(self) -> bool:
        return bool(self.flags & IFF_PROMISC)

    def datum(self, name: str) -> Any:
        for key, value in self.data:
            if key == name:
                return value
        return None


def netlink_errno(exc: BaseException) -> int | None:
    """The errno of a NetlinkError (or any OSError), else None."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, OSError):
        return exc.errno
    return None


def snapshot(msg: Any) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = ""
    data: tuple[tuple[str, Any], ...] = ()
    if info is not None:
        kind = info.get_attr("IFLA_INFO_KIND") or ""
        info_data = info.get_attr("IFLA_INFO_DATA")
        if info_data is not None and hasattr(info_data, "get_attr"):
            # Only what the plugins read: decoding every bridge attribute costs ms.
            data = tuple(
                (name, value)
                for name in DATA_KEYS
                if (value := info_data.get_attr(name)) is not None
            )
    return Link(
        index=int(msg["index"]),
        name=msg.get_attr("IFLA_IFNAME") or "",
        kind=kind,
        mtu=int(msg.get_attr("IFLA_MTU") or 0),
        mac=msg.get_attr("IFLA_ADDRESS") or "",
        master=int(msg.get_attr("IFLA_MASTER") or 0),
        parent=int(msg.get_attr("IFLA_LINK") or 0),
        flags=int(msg["flags"]),
        operstate=msg.get_attr("IFLA_OPERSTATE") or "",
        data=data,
    )


def get(ipr: Netlink, name: str) -> Link | None:
    """The link called `name`, or None when there is none."""
    try:
        return snapshot(ipr.link("get", ifname=name)[0])
    except OSError as exc:  # NetlinkError(ENODEV) for a missing link
        if netlink_errno(exc) in (errno.ENODEV, errno.ENOENT):
            return None
        raise


def by_index(ipr: Netlink, index: int) -> Link | None:
    try:
        return snapshot(ipr.link("get", index=index)[0])
    except OSError as exc:  # NetlinkError(ENODEV) when the index is gone
        if netlink_errno(exc) in (errno.ENODEV, errno.ENOENT):
            return None
        raise


def require(ipr: Netlink, name: str, what: str = "link") -> Link:
    link = get(ipr, name)
    if link is None:
        raise CniError(Code.OTHER, f"failed to find {what} {name!r}", "Link not found")
    return link


def temp_name(prefix: str = "jt") -> str:
    """A random host-side name for a link on its way into a pod."""
    return f"{prefix}{secrets.token_hex(4)}"[:IFNAMSIZ]


def delete(ipr: Netlink, name: str) -> bool:
    """Delete a link by name; False when it was already gone (one netlink call)."""
    try:
        ipr.link("del", ifname=name)
    except OSError as exc:  # ENODEV: already gone, which is what we want
        if netlink_errno(exc) in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def check_name(ifname: str) -> None:
    if not ifname or len(ifname) > IFNAMSIZ or "/" in ifname or ifname in (".", ".."):
        raise CniError(Code.INVALID_ENV, "invalid interface name", repr(ifname))


def move(ipr: Netlink, *, index: int, netns_fd: int, name: str | None = None) -> None:
    """Move a link into another netns, optionally renaming it on the way."""
    changes: dict[str, Any] = {"net_ns_fd": netns_fd}
    if name:
        changes["ifname"] = name
    ipr.link("set", index=index, **changes)


def rename(ipr: Netlink, *, index: int, name: str) -> None:
    """Rename a link (down first: the kernel refuses to rename an up link)."""
    ipr.link("set", index=index, state="down")
    ipr.link("set", index=index, ifname=name)


def set_up(ipr: Netlink, index: int) -> None:
    ipr.link("set", index=index, state="up")


def wait_for(
    probe: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll `probe` against a deadline (never a fixed sleep); CniError on timeout."""
    deadline = clock() + timeout
    pause = 0.002
    while not probe():
        if clock() >= deadline:
            raise CniError(Code.OTHER, f"timed out waiting for {what}", f"after {timeout:g}s")
        sleep(pause)
        pause = min(pause * 2, 0.05)

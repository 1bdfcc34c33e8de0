"""An SR-IOV VF's administrative settings, read and written through its PF.

`VfSettings` is the model (MAC, VLAN/QoS/proto, spoofchk, trust, link state,
tx rates; None = leave alone); `NetlinkVfControl` does `ip link set PF vf N …`
(IFLA_VFINFO_LIST, encoded here as the kernel's structs) and reads it back.
The SR-IOV delegate takes a `VfControl` as a parameter so tests can record
which PF calls are made (sriov-cni semantics).
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from jaring.cni.errors import CniError, Code

from . import links, rtnl
from .rtnl import Rtnl

LINK_STATES = {"auto": 0, "enable": 1, "disable": 2}
VLAN_PROTOS = {"802.1q": 0x8100, "802.1ad": 0x88A8}
RTEXT_FILTER_VF = 1


@dataclass(frozen=True)
class VfSettings:
    """VF settings; a None field is unknown (read) or unchanged (apply)."""

    mac: str | None = None
    vlan: int | None = None
    qos: int | None = None
    proto: str | None = None  # "802.1q" or "802.1ad"
    spoofchk: bool | None = None
    trust: bool | None = None
    link_state: str | None = None  # "auto", "enable", "disable"
    min_tx_rate: int | None = None
    max_tx_rate: int | None = None

    def changed(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)

    def only(self, names: tuple[str, ...]) -> VfSettings:
        """These fields kept, the others None."""
        return VfSettings(**{k: (v if k in names else None) for k, v in asdict(self).items()})

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, doc: object) -> VfSettings:
        if not isinstance(doc, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


class VfControl(Protocol):
    def read(self, *, pf: str, vf: int) -> VfSettings: ...

    def apply(self, *, pf: str, vf: int, settings: VfSettings) -> None: ...


# IFLA_VFINFO_LIST and its attributes (linux/if_link.h)
IFLA_EXT_MASK, IFLA_VFINFO_LIST, IFLA_VF_INFO = 29, 22, 1
VF_MAC, VF_VLAN, VF_SPOOFCHK, VF_LINK_STATE, VF_RATE, VF_TRUST, VF_VLAN_LIST = 1, 2, 4, 5, 6, 9, 12
VF_VLAN_INFO = 1
U32_UNSET = 0xFFFFFFFF  # a driver that does not report a setting


def encode_vf(vf: int, settings: VfSettings) -> bytes:
    """One IFLA_VF_INFO for these settings (None fields left out), as `ip link set vf` sends."""
    parts = []
    if settings.mac is not None:
        mac = bytes(int(x, 16) for x in settings.mac.split(":"))
        parts.append(rtnl.attr(VF_MAC, struct.pack("=I", vf) + mac.ljust(32, b"\0")))
    if settings.vlan is not None:
        proto = VLAN_PROTOS[settings.proto or "802.1q"]
        if proto == VLAN_PROTOS["802.1q"]:
            parts.append(
                rtnl.attr(VF_VLAN, struct.pack("=III", vf, settings.vlan, settings.qos or 0))
            )
        else:
            # struct ifla_vf_vlan_info is 16 bytes: the be16 protocol plus padding.
            info = struct.pack("=III", vf, settings.vlan, settings.qos or 0)
            info += struct.pack(">H", proto) + b"\0\0"
            parts.append(rtnl.nested(VF_VLAN_LIST, rtnl.attr(VF_VLAN_INFO, info)))
    if settings.spoofchk is not None:
        parts.append(rtnl.attr(VF_SPOOFCHK, struct.pack("=II", vf, int(settings.spoofchk))))
    if settings.trust is not None:
        parts.append(rtnl.attr(VF_TRUST, struct.pack("=II", vf, int(settings.trust))))
    if settings.link_state is not None:
        state = LINK_STATES[settings.link_state]
        parts.append(rtnl.attr(VF_LINK_STATE, struct.pack("=II", vf, state)))
    if settings.min_tx_rate is not None or settings.max_tx_rate is not None:
        rate = struct.pack("=III", vf, settings.min_tx_rate or 0, settings.max_tx_rate or 0)
        parts.append(rtnl.attr(VF_RATE, rate))
    return rtnl.nested(IFLA_VF_INFO, *parts) if parts else b""


def decode_vfs(link_body: bytes) -> dict[int, VfSettings]:
    """Every VF's settings from an RTM_GETLINK reply asked with RTEXT_FILTER_VF."""
    found: dict[int, VfSettings] = {}
    by_value = {v: k for k, v in LINK_STATES.items()}
    by_proto = {v: k for k, v in VLAN_PROTOS.items()}
    for key, vflist in rtnl._attrs(link_body, 16):
        if key != IFLA_VFINFO_LIST:
            continue
        for info_key, info in rtnl._attrs(vflist):
            if info_key != IFLA_VF_INFO:
                continue
            fields: dict[str, Any] = {}
            vf = -1
            for kind, payload in rtnl._attrs(info):
                if kind == VF_MAC:
                    vf = struct.unpack_from("=I", payload)[0]
                    fields["mac"] = ":".join(f"{b:02x}" for b in payload[4:10])
                elif kind == VF_VLAN:
                    _, fields["vlan"], fields["qos"] = struct.unpack_from("=III", payload)
                    fields.setdefault("proto", "802.1q")
                elif kind == VF_VLAN_LIST:
                    for _, item in rtnl._attrs(payload):
                        if len(item) >= 14:
                            _, vlan, qos = struct.unpack_from("=III", item)
                            fields.setdefault("vlan", vlan)
                            fields.setdefault("qos", qos)
                            proto = struct.unpack_from(">H", item, 12)[0]
                            fields["proto"] = by_proto.get(proto, "802.1q")
                elif kind in (VF_SPOOFCHK, VF_TRUST):
                    value = struct.unpack_from("=I", payload, 4)[0]
                    name = "spoofchk" if kind == VF_SPOOFCHK else "trust"
                    fields[name] = None if value == U32_UNSET else bool(value)
                elif kind == VF_LINK_STATE:
                    fields["link_state"] = by_value.get(struct.unpack_from("=I", payload, 4)[0])
                elif kind == VF_RATE:
                    _, fields["min_tx_rate"], fields["max_tx_rate"] = struct.unpack_from(
                        "=III", payload
                    )
            if vf >= 0:
                found[vf] = VfSettings(**fields)
    return found


def _pf_index(ipr: Rtnl, pf: str) -> int:
    link = links.get(ipr, pf)
    if link is None:
        raise CniError(Code.OTHER, f"SR-IOV PF {pf!r} not found", "Link not found")
    return link.index


class NetlinkVfControl:
    """The production VF control: RTM_GETLINK/SETLINK on the PF in the host netns."""

    def read(self, *, pf: str, vf: int) -> VfSettings:
        with rtnl.Rtnl() as ipr:
            mask = rtnl.attr(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_VF))
            body = ipr.link_raw(_pf_index(ipr, pf), mask)
        vfs = decode_vfs(body)
        if vf not in vfs:
            raise CniError(Code.OTHER, f"VF {vf} not reported by PF {pf!r}")
        return vfs[vf]

    def apply(self, *, pf: str, vf: int, settings: VfSettings) -> None:
        info = encode_vf(vf, settings)
        if not info:
            return
        with rtnl.Rtnl() as ipr:
            try:
                ipr.set_link_raw(_pf_index(ipr, pf), rtnl.nested(IFLA_VFINFO_LIST, info))
            except rtnl.NetlinkError as exc:  # the driver refused one setting: name the VF
                raise CniError(
                    Code.OTHER, f"failed to configure VF {vf} of {pf!r}", f"{settings}: {exc}"
                ) from None

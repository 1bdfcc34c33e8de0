"""An SR-IOV VF's administrative settings, read and written through its PF.

`VfSettings` is the model (MAC, VLAN/QoS/proto, spoofchk, trust, link state,
tx rates; None = leave alone); `NetlinkVfControl` does `ip link set PF vf N …`
over pyroute2 (IFLA_VFINFO_LIST). The SR-IOV delegate takes a `VfControl` as a
parameter so tests can record which PF calls are made (sriov-cni semantics).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from jaring.cni.errors import CniError, Code

from . import links

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


def _pf_index(ipr: Any, pf: str) -> int:
    link = links.get(ipr, pf)
    if link is None:
        raise CniError(Code.OTHER, f"SR-IOV PF {pf!r} not found", "Link not found")
    return link.index


class NetlinkVfControl:
    """The production VF control: RTM_GETLINK/SETLINK on the PF in the host netns."""

    def read(self, *, pf: str, vf: int) -> VfSettings:
        with _pyroute2() as ipr:
            msg = ipr.link("get", index=_pf_index(ipr, pf), ext_mask=RTEXT_FILTER_VF)[0]
        vflist = msg.get_attr("IFLA_VFINFO_LIST")
        for info in vflist.get_attrs("IFLA_VF_INFO") if vflist is not None else ():
            mac = info.get_attr("IFLA_VF_MAC")
            if mac is None or mac["vf"] != vf:
                continue
            vlan = info.get_attr("IFLA_VF_VLAN") or {}
            proto = "802.1q"
            vlist = info.get_attr("IFLA_VF_VLAN_LIST")
            if vlist is not None:
                for ivvi in vlist.get_attrs("IFLA_VF_VLAN_INFO"):
                    proto = {v: k for k, v in VLAN_PROTOS.items()}.get(ivvi["proto"], proto)
            rate = info.get_attr("IFLA_VF_RATE") or {}
            spoof = info.get_attr("IFLA_VF_SPOOFCHK")
            trust = info.get_attr("IFLA_VF_TRUST")
            state = info.get_attr("IFLA_VF_LINK_STATE")
            by_value = {v: k for k, v in LINK_STATES.items()}
            return VfSettings(
                mac=mac["mac"],
                vlan=vlan.get("vlan"),
                qos=vlan.get("qos"),
                proto=proto,
                spoofchk=None if spoof is None else bool(spoof["spoofchk"]),
                trust=None if trust is None else bool(trust["trust"]),
                link_state=None if state is None else by_value.get(state["link_state"]),
                min_tx_rate=rate.get("min_tx_rate"),
                max_tx_rate=rate.get("max_tx_rate"),
            )
        raise CniError(Code.OTHER, f"VF {vf} not reported by PF {pf!r}")

    def apply(self, *, pf: str, vf: int, settings: VfSettings) -> None:
        spec = vf_spec(vf, settings)
        if len(spec) == 1:
            return
        with _pyroute2() as ipr:
            try:
                ipr.link("set", index=_pf_index(ipr, pf), vf=spec)
            except CniError:
                raise
            except Exception as exc:  # the driver refused one setting: name the VF
                raise CniError(
                    Code.OTHER, f"failed to configure VF {vf} of {pf!r}", f"{settings}: {exc}"
                ) from None


def _pyroute2() -> Any:
    """pyroute2 for the VF attributes (IFLA_VFINFO_LIST), which our lean client skips."""
    # pyroute2 ships no type information.
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    return IPRoute()


def vf_spec(vf: int, settings: VfSettings) -> dict[str, Any]:
    """pyroute2's `vf=` argument for these settings (one IFLA_VF_INFO)."""
    spec: dict[str, Any] = {"vf": vf}
    if settings.mac is not None:
        spec["mac"] = settings.mac
    if settings.vlan is not None:
        proto = VLAN_PROTOS[settings.proto or "802.1q"]
        if proto == VLAN_PROTOS["802.1q"]:
            spec["vlan"] = {"vlan": settings.vlan, "qos": settings.qos or 0}
        else:
            spec["vlan"] = [{"vlan": settings.vlan, "qos": settings.qos or 0, "proto": proto}]
    if settings.spoofchk is not None:
        spec["spoofchk"] = int(settings.spoofchk)
    if settings.trust is not None:
        spec["trust"] = int(settings.trust)
    if settings.link_state is not None:
        spec["link_state"] = LINK_STATES[settings.link_state]
    if settings.min_tx_rate is not None or settings.max_tx_rate is not None:
        spec["rate"] = {
            "min_tx_rate": settings.min_tx_rate or 0,
            "max_tx_rate": settings.max_tx_rate or 0,
        }
    return spec

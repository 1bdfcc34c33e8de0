"""The `ipvlan` CNI plugin, native: an ipvlan on a host master, inside the pod.

Reference ipvlan 1.1.1 keys and behaviour (`master`, default the default
route's interface or, chained, prevResult's single interface; `mode`
l2/l3/l3s; `mtu` up to the master's; IPs from `ipam` or prevResult); the
shared logic is `sublink`. `PLUGIN` runs in-process; `main` is `jaring-ipvlan`.
"""

from __future__ import annotations

from typing import NoReturn

from .sublink import Flavour, SubLinkPlugin

ABOUT = "jaring ipvlan: native CNI ipvlan plugin (reference ipvlan 1.1.1 compatible)"

IPVLAN = Flavour(
    kind="ipvlan",
    mode_key="ipvlan_mode",
    modes={"l2": 0, "l3": 1, "l3s": 2},  # IPVLAN_MODE_L2/L3/L3S
    default_mode="l2",
    with_mac=False,
    arp_notify=True,
    mtu_capped_by_master=False,
    chained_master=True,
)

PLUGIN = SubLinkPlugin(IPVLAN)


def main() -> NoReturn:
    from jaring.cni import skel

    skel.main(PLUGIN, about=ABOUT)

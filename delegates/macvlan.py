"""The `macvlan` CNI plugin, native: a macvlan on a host master, inside the pod.

Reference macvlan 1.1.1 keys and behaviour (`master`, default the default
route's interface; `mode` bridge/private/vepa/passthru; `mtu` up to the
master's; `mac` from runtimeConfig/args); the shared logic is `sublink`.
`PLUGIN` runs in-process; `main` is the `jaring-macvlan` executable.
"""

from __future__ import annotations

from typing import NoReturn

from .sublink import Flavour, SubLinkPlugin

ABOUT = "jaring macvlan: native CNI macvlan plugin (reference macvlan 1.1.1 compatible)"

MACVLAN = Flavour(
    kind="macvlan",
    mode_key="macvlan_mode",
    modes={"bridge": "bridge", "private": "private", "vepa": "vepa", "passthru": "passthru"},
    default_mode="bridge",
    with_mac=True,
    arp_notify=True,
    mtu_capped_by_master=True,
    chained_master=False,
)

PLUGIN = SubLinkPlugin(MACVLAN)


def main() -> NoReturn:
    from jaring.cni import skel

    skel.main(PLUGIN, about=ABOUT)

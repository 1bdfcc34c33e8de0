"""A pod netns deleted after an in-process ADD and DEL really dies: jaring holds nothing in it.

The runtime deletes the pod's netns after DEL; the kernel frees it (and hands
device netdevs such as SR-IOV VFs back to the host) only when no process and
no open fd still refers to it. A veth pair with one end in the pod is the
canary: its host end vanishes exactly when the pod netns is freed.
"""

from __future__ import annotations

import pytest

from ..difftest.harness import Case, Runner, Side, sh
from .simnic import link, wait_for

pytestmark = [pytest.mark.root, pytest.mark.kernel]

V4 = {"type": "host-local", "dataDir": "@DATADIR@", "ranges": [[{"subnet": "10.90.0.0/24"}]]}


def test_pod_netns_dies_after_in_process_macvlan_add_and_del(sides: tuple[Side, Side]) -> None:
    _, side = sides
    canary = f"jc{side.tag}"
    sh("ip", "link", "add", canary, "type", "veth", "peer", "name", "canary", "netns", side.netns)
    try:
        case = Case("macvlan", {"type": "macvlan", "master": "@MASTER@", "ipam": V4}, "1.0.0", "")
        run = Runner("inproc", "macvlan")
        stdin = side.render(case.template, case.version)
        assert run("ADD", side, stdin, ifname="net1").code == 0
        assert run("DEL", side, stdin, ifname="net1").code == 0

        sh("ip", "netns", "del", side.netns)

        wait_for("the pod netns to be freed", lambda: link(canary) is None, timeout=8)
    finally:
        sh("ip", "link", "del", canary, check=False)

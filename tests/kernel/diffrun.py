"""The differential run (ADD, CHECK, DEL, DEL) over order-stable snapshots.

Same steps as `tests/difftest/harness.compare`, but every list in a snapshot is
sorted again after names are masked (the harness sorts links by their raw
names, so two veth ports, pod and VLAN gateway, come out in random order), and
the state after ADD is taken once the pod link's operstate settled, and again
while the two differ (linkwatch applies carrier/operstate up to a second late);
the state after DEL is compared once, after the second DEL (VM time).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..difftest.harness import (
    Case,
    Runner,
    Side,
    assert_same,
    normalise_result,
    reference_version,
    sh,
    snapshot,
)


def stable(value: Any) -> Any:
    """`value` with every list sorted by its items' canonical JSON."""
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [stable(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def settle(side: Side, ifname: str, *, within: float = 1.5) -> None:
    """Wait (bounded) for the pod link's operstate to leave UNKNOWN after it came up.

    The kernel's linkwatch applies carrier/operstate changes up to a second
    later; a snapshot taken at once can catch one side mid-way.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        out = sh("ip", "-n", side.netns, "-j", "link", "show", "dev", ifname, check=False)
        found = json.loads(out) if out.strip() else []
        if not found or "UP" not in found[0]["flags"] or found[0]["operstate"] != "UNKNOWN":
            return
        time.sleep(0.05)


LINKWATCH_DELAY = 1.1  # s: the kernel batches non-urgent link events once a second


def assert_same_once_settled(
    ours: Side, ref: Side, ifname: str, what: str, *, within: float = 2 * LINKWATCH_DELAY
) -> None:
    """Snapshots equal; while they differ, polled until `within` after the first pair.

    Not only the pod link is caught mid-way: a bridge the ADD made turns
    UNKNOWN -> UP when its first port forwards, an event linkwatch applies
    up to a second later. The deadline starts after the first pair, which
    takes seconds of VM time, so a difference is always looked at again.
    """
    mine, theirs = state(ours, ifname), state(ref, ifname)
    deadline = time.monotonic() + within
    while mine != theirs and time.monotonic() < deadline:
        time.sleep(0.1)
        mine, theirs = state(ours, ifname), state(ref, ifname)
    assert_same(mine, theirs, what)


def state(side: Side, ifname: str) -> dict[str, Any]:
    out: dict[str, Any] = stable(snapshot(side, ifname))
    return out


def _with_prev(stdin: bytes, result: dict[str, Any] | None) -> bytes:
    conf = json.loads(stdin)
    conf["prevResult"] = result
    return json.dumps(conf).encode()


def compare(case: Case, ref: Side, ours: Side) -> None:
    """Run ADD, CHECK (ours), DEL, DEL on both sides; assert equal results and states."""
    ref_run, our_run = Runner("ref", case.plugin_type), Runner(case.how, case.plugin_type)
    ref_in = ref.render(case.template, reference_version(case.version))
    our_in = ours.render(case.template, case.version)

    ref_add = ref_run("ADD", ref, ref_in, ifname=case.ifname)
    our_add = our_run("ADD", ours, our_in, ifname=case.ifname)
    assert (our_add.code == 0) == (ref_add.code == 0), (ref_add, our_add)
    if ref_add.code == 0:
        ref_doc = normalise_result(ref, ref_add.doc)
        our_doc = normalise_result(ours, our_add.doc)
        assert our_doc is not None and ref_doc is not None
        assert our_doc.pop("cniVersion") == case.version
        ref_doc.pop("cniVersion")
        assert_same(our_doc, ref_doc, "ADD result")
        settle(ours, case.ifname)
        settle(ref, case.ifname)
        assert_same_once_settled(ours, ref, case.ifname, "state after ADD")
        if case.version not in {"0.3.0", "0.3.1"}:
            our_check = our_run("CHECK", ours, _with_prev(our_in, our_add.doc), ifname=case.ifname)
            assert our_check.code == 0, our_check
    else:
        mine = state(ours, case.ifname)
        assert not any(link["ifname"] == case.ifname for link in mine["pod"]["links"]), mine

    for _ in range(2):  # DEL is idempotent on both sides
        ref_run("DEL", ref, _with_prev(ref_in, ref_add.doc), ifname=case.ifname)
        our_del = our_run("DEL", ours, _with_prev(our_in, our_add.doc), ifname=case.ifname)
        assert our_del.code == 0, our_del
    # One state check after both DELs: a snapshot costs seconds of VM time.
    mine, theirs = state(ours, case.ifname), state(ref, case.ifname)
    if ref_add.code != 0:
        mine, theirs = mine["pod"], theirs["pod"]
    assert_same(mine, theirs, "state after DEL")

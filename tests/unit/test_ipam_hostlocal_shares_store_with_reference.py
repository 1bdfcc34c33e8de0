"""The reference binary and native host-local can take turns on one store.

A call sequence where reference, in-process native and `jaring-host-local`
alternate on ONE dataDir gives exactly what the reference alone gives (same
addresses in the same round-robin order, same final files), and each side
finds, checks and releases what the other reserved, old-format files included.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from jaring.delegates.hostlocal import PLUGIN

from .ipam_harness import (
    comparable,
    inprocess_runner,
    native_exec_runner,
    reference_available,
    reference_runner,
    snapshot,
)

pytestmark = pytest.mark.skipif(
    not reference_available("host-local"), reason="reference host-local not installed"
)

REF = reference_runner("host-local")
NATIVE = inprocess_runner(PLUGIN)
NATIVE_EXEC = native_exec_runner("host-local")


def conf(data_dir: Path, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": "shared",
        "ipam": {
            "type": "host-local",
            "dataDir": str(data_dir),
            "ranges": [
                [{"subnet": "10.88.0.0/29"}, {"subnet": "10.88.1.0/30"}],
                [{"subnet": "2001:db8:88::/125"}],
            ],
        },
    }


def sequence() -> list[tuple[str, str, str]]:
    steps = []
    for n in range(14):
        steps.append(("ADD", f"ctr-{n}", "eth0"))
        if n % 3 == 2:
            steps.append(("DEL", f"ctr-{n - 2}", "eth0"))
        if n % 4 == 3:
            steps.append(("CHECK", f"ctr-{n}", "eth0"))
    steps += [("DEL", f"ctr-{n}", "eth0") for n in range(14)]
    return steps


def test_alternating_plugins_allocate_like_the_reference_alone(tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    shared = tmp_path / "shared"
    turns = itertools.cycle((REF, NATIVE, REF, NATIVE, NATIVE_EXEC))
    held: dict[str, set[str]] = {}
    for command, cid, ifname in sequence():
        expected = REF(command, conf(alone), container_id=cid, ifname=ifname)
        got = next(turns)(command, conf(shared), container_id=cid, ifname=ifname)
        assert comparable(got) == comparable(expected), (command, cid)
        assert snapshot(shared) == snapshot(alone), (command, cid)
        if command == "ADD" and got.ok and got.doc:
            held[cid] = {ip["address"] for ip in got.doc["ips"]}
        elif command == "DEL":
            held.pop(cid, None)
        in_use = [a for addrs in held.values() for a in addrs]
        assert len(in_use) == len(set(in_use))
    assert [f for f in snapshot(shared)["shared"] if f[0].isdigit()] == []


@pytest.mark.parametrize(
    ("writer", "reader"),
    [(REF, NATIVE), (NATIVE, REF), (NATIVE_EXEC, REF), (REF, NATIVE_EXEC)],
    ids=["ref-then-native", "native-then-ref", "exec-then-ref", "ref-then-exec"],
)
def test_each_side_checks_and_releases_the_others_reservation(
    writer: Any, reader: Any, tmp_path: Path
) -> None:
    c = conf(tmp_path)
    assert writer("ADD", c, container_id="ctr-1", ifname="eth0").ok
    assert reader("CHECK", c, container_id="ctr-1", ifname="eth0").ok
    assert not reader("CHECK", c, container_id="ctr-1", ifname="net9").ok
    duplicate = reader("ADD", c, container_id="ctr-1", ifname="eth0")
    assert not duplicate.ok
    assert "duplicate allocation is not allowed" in duplicate.msg
    assert reader("DEL", c, container_id="ctr-1", ifname="eth0").ok
    assert [f for f in snapshot(tmp_path)["shared"] if f[0].isdigit()] == []
    assert reader("DEL", c, container_id="ctr-1", ifname="eth0").ok


@pytest.mark.parametrize("runner", [REF, NATIVE], ids=["reference", "native"])
def test_old_format_files_without_ifname_are_found_and_released(
    runner: Any, tmp_path: Path
) -> None:
    """Stores from before ifnames were recorded hold the container ID alone."""
    store = tmp_path / "shared"
    store.mkdir()
    (store / "10.88.0.2").write_text("ctr-old")
    (store / "2001:db8:88::2").write_text("ctr-old\n")
    (store / "10.88.0.3").write_text("ctr-other")
    c = conf(tmp_path)
    assert runner("CHECK", c, container_id="ctr-old", ifname="eth0").ok
    added = runner("ADD", c, container_id="ctr-old", ifname="eth0")
    assert "10.88.0.2 has been allocated to ctr-old" in added.msg
    assert runner("DEL", c, container_id="ctr-old", ifname="eth0").ok
    assert sorted(f for f in snapshot(tmp_path)["shared"] if f[0].isdigit()) == ["10.88.0.3"]

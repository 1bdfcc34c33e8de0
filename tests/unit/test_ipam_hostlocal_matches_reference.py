"""Native host-local gives the reference binary's results, errors and store files.

Every config runs the same call sequence (ADD, duplicate ADD, CHECK, DEL twice,
round-robin reuse, exhaustion) through /usr/lib/cni/host-local and through
jaring's host-local, each on a fresh dataDir, and compares each call's output
and the whole store after each call; for every spec version in-process, and
through the `jaring-host-local` executable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.version import SUPPORTED
from jaring.delegates.hostlocal import PLUGIN

from .ipam_harness import (
    Runner,
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

Step = tuple[str, str, str, str]  # command, container ID, ifname, CNI_ARGS

STANDARD: tuple[Step, ...] = (
    ("ADD", "ctr-a", "eth0", ""),
    ("ADD", "ctr-b", "eth0", "IgnoreUnknown=1;K8S_POD_NAME=p"),
    ("ADD", "ctr-a", "net1", ""),
    ("CHECK", "ctr-a", "eth0", ""),
    ("CHECK", "ctr-z", "eth0", ""),
    ("DEL", "ctr-b", "eth0", ""),
    ("ADD", "ctr-c", "eth0", ""),
    ("ADD", "ctr-a", "eth0", ""),
    ("DEL", "ctr-b", "eth0", ""),
    ("DEL", "ctr-a", "eth0", ""),
    ("DEL", "ctr-a", "net1", ""),
    ("ADD", "ctr-d", "eth0", ""),
    ("DEL", "ctr-c", "eth0", ""),
    ("DEL", "ctr-d", "eth0", ""),
)

EXHAUST: tuple[Step, ...] = (
    *(("ADD", f"ctr-{n}", "eth0", "") for n in range(7)),
    ("DEL", "ctr-2", "eth0", ""),
    ("DEL", "ctr-4", "eth0", ""),
    ("ADD", "ctr-7", "eth0", ""),
    ("ADD", "ctr-8", "eth0", ""),
    ("ADD", "ctr-9", "eth0", ""),
    *(("DEL", f"ctr-{n}", "eth0", "") for n in range(10)),
)

REQUESTED_BY_ARGS: tuple[Step, ...] = (
    ("ADD", "ctr-a", "eth0", "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.50.0.7"),
    ("ADD", "ctr-b", "eth0", "IP=10.50.0.7"),
    ("ADD", "ctr-b", "eth0", "IP=10.50.0.1"),
    ("ADD", "ctr-b", "eth0", "IP=10.50.1.1"),
    ("ADD", "ctr-b", "eth0", "IP=10.50.0.9/8"),
    ("ADD", "ctr-c", "eth0", ""),
    ("ADD", "ctr-d", "eth0", "IP="),
    ("DEL", "ctr-a", "eth0", ""),
    ("ADD", "ctr-e", "eth0", "IP=10.50.0.7"),
    *(("DEL", f"ctr-{n}", "eth0", "") for n in "abcde"),
)


@dataclass(frozen=True)
class Case:
    name: str
    ipam: dict[str, Any]
    top: dict[str, Any] = field(default_factory=dict)
    steps: tuple[Step, ...] = STANDARD


CASES = (
    Case("v4-subnet", {"subnet": "10.10.0.0/24"}),
    Case(
        "v4-range-gateway-inside-routes",
        {
            "subnet": "10.11.0.0/24",
            "rangeStart": "10.11.0.10",
            "rangeEnd": "10.11.0.14",
            "gateway": "10.11.0.12",
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.7.9/16", "gw": "10.11.0.254"}],
        },
    ),
    Case("v4-exhausted", {"subnet": "10.12.0.0/29"}, steps=EXHAUST),
    Case(
        "v6-range",
        {
            "ranges": [
                [
                    {
                        "subnet": "2001:DB8:1::/64",
                        "rangeStart": "2001:db8:1::10",
                        "rangeEnd": "2001:db8:1::1f",
                        "gateway": "2001:db8:1::ffff",
                    }
                ]
            ],
            "routes": [{"dst": "::/0"}],
        },
    ),
    Case(
        "dual-stack",
        {
            "ranges": [[{"subnet": "10.13.0.0/24"}], [{"subnet": "2001:db8:2::/64"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "2001:db8:2::1"}],
        },
    ),
    Case(
        "one-set-several-ranges-wraps",
        {
            "ranges": [
                [
                    {"subnet": "10.14.0.0/30"},
                    {"subnet": "10.14.1.0/29", "rangeStart": "10.14.1.2", "rangeEnd": "10.14.1.3"},
                ]
            ]
        },
        steps=EXHAUST,
    ),
    Case(
        "runtime-ip-ranges-first",
        {"subnet": "10.15.0.0/24"},
        top={"runtimeConfig": {"ipRanges": [[{"subnet": "10.16.0.0/24"}]]}},
    ),
    Case(
        "legacy-and-ranges",
        {"subnet": "10.17.0.0/24", "ranges": [[{"subnet": "2001:db8:3::/120"}]]},
    ),
    Case(
        "requested-runtime-config-dual",
        {"ranges": [[{"subnet": "10.18.0.0/24"}], [{"subnet": "2001:db8:4::/64"}]]},
        top={"runtimeConfig": {"ips": ["10.18.0.50/24", "2001:db8:4::50"]}},
    ),
    Case(
        "requested-args-cni",
        {"subnet": "10.19.0.0/24", "rangeStart": "10.19.0.100"},
        top={"args": {"cni": {"ips": ["10.19.0.9"]}}},
    ),
    Case("requested-cni-args", {"subnet": "10.50.0.0/24"}, steps=REQUESTED_BY_ARGS),
    Case(
        "range-start-is-gateway",
        {"subnet": "10.20.0.0/24", "rangeStart": "10.20.0.1", "rangeEnd": "10.20.0.3"},
        steps=EXHAUST,
    ),
    Case(
        "gateway-outside-subnet",
        {"subnet": "10.21.0.0/24", "gateway": "192.0.2.1", "rangeEnd": "10.21.0.3"},
        steps=EXHAUST,
    ),
    Case(
        "mixed-case-keys-like-go",
        {"Subnet": "10.22.0.0/24", "RangeStart": "10.22.0.5", "ROUTES": [{"Dst": "0.0.0.0/0"}]},
    ),
)


def run_sequence(
    runner: Runner, case: Case, version: str, tmp: Path
) -> list[tuple[tuple[bool, Any], dict[str, dict[str, bytes]]]]:
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / "store"
    ipam = {"type": "host-local", **case.ipam, "dataDir": str(data_dir)}
    resolv = tmp / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch example.org\noptions ndots:2\n")
    if case.name.startswith("v4-subnet"):
        ipam["resolvConf"] = str(resolv)
    conf = {"cniVersion": version, "name": "difftest", "type": "bridge", **case.top, "ipam": ipam}
    trace = []
    for command, container_id, ifname, args in case.steps:
        out = runner(command, conf, container_id=container_id, ifname=ifname, args=args)
        trace.append((comparable(out), snapshot(data_dir)))
    return trace


def assert_same(reference: list[Any], native: list[Any], steps: tuple[Step, ...]) -> None:
    assert len(reference) == len(native)
    for step, ref, nat in zip(steps, reference, native, strict=True):
        assert nat[0] == ref[0], f"output differs at {step}"
        assert nat[1] == ref[1], f"store differs after {step}"


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_in_process_matches_reference(case: Case, version: str, tmp_path: Path) -> None:
    ref = run_sequence(reference_runner("host-local"), case, version, tmp_path / "ref")
    nat = run_sequence(inprocess_runner(PLUGIN), case, version, tmp_path / "nat")
    assert_same(ref, nat, case.steps)
    assert any(ok for (ok, _), _ in ref), "the sequence should have some successful calls"


@pytest.mark.parametrize(
    ("case", "version"),
    [(c, SUPPORTED[i % len(SUPPORTED)]) for i, c in enumerate(CASES)],
    ids=lambda v: v.name if isinstance(v, Case) else v,
)
def test_executable_matches_reference(case: Case, version: str, tmp_path: Path) -> None:
    ref = run_sequence(reference_runner("host-local"), case, version, tmp_path / "ref")
    nat = run_sequence(native_exec_runner("host-local"), case, version, tmp_path / "nat")
    assert_same(ref, nat, case.steps)


BAD: tuple[tuple[str, dict[str, Any], dict[str, Any], str], ...] = (
    # (id, ipam, top-level extras, CNI_ARGS)
    ("no-ranges", {}, {}, ""),
    ("empty-ranges", {"ranges": []}, {}, ""),
    ("empty-range-set", {"ranges": [[]]}, {}, ""),
    ("subnet-too-small", {"subnet": "10.9.0.0/31"}, {}, ""),
    ("v6-too-small", {"subnet": "2001:db8::/127"}, {}, ""),
    ("host-bits", {"subnet": "10.9.0.1/24"}, {}, ""),
    ("start-outside", {"subnet": "10.9.0.0/24", "rangeStart": "10.9.1.5"}, {}, ""),
    ("end-outside", {"subnet": "10.9.0.0/24", "rangeEnd": "10.9.1.5"}, {}, ""),
    (
        "start-after-end",
        {"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.50", "rangeEnd": "10.9.0.40"},
        {},
        "",
    ),
    ("end-other-family", {"subnet": "10.9.0.0/24", "rangeEnd": "2001:db8::5"}, {}, ""),
    ("bad-subnet", {"subnet": "nope"}, {}, ""),
    (
        "sets-overlap",
        {"ranges": [[{"subnet": "10.9.0.0/24"}], [{"subnet": "10.9.0.0/16"}]]},
        {},
        "",
    ),
    (
        "ranges-overlap",
        {"ranges": [[{"subnet": "10.9.0.0/24"}, {"subnet": "10.9.0.0/25"}]]},
        {},
        "",
    ),
    (
        "mixed-families",
        {"ranges": [[{"subnet": "10.9.0.0/24"}, {"subnet": "2001:db8::/64"}]]},
        {},
        "",
    ),
    ("request-gateway", {"subnet": "10.9.0.0/24"}, {}, "IP=10.9.0.1"),
    ("request-outside", {"subnet": "10.9.0.0/24"}, {}, "IP=10.9.1.1"),
    (
        "request-two-in-one-set",
        {"subnet": "10.9.0.0/24"},
        {"runtimeConfig": {"ips": ["10.9.0.7", "10.9.0.8"]}},
        "IP=10.9.0.7",
    ),
    ("unknown-arg", {"subnet": "10.9.0.0/24"}, {}, "K8S_POD_NAME=x"),
    ("bad-ignore-unknown", {"subnet": "10.9.0.0/24"}, {}, "IgnoreUnknown=yes;X=1"),
    ("ignore-unknown-false", {"subnet": "10.9.0.0/24"}, {}, "IgnoreUnknown=0;X=1"),
    ("bad-arg-ip", {"subnet": "10.9.0.0/24"}, {}, "IP=bad"),
    ("arg-pair-with-two-equals", {"subnet": "10.9.0.0/24"}, {}, "IgnoreUnknown=1;X=1=2"),
    ("missing-resolv-conf", {"subnet": "10.9.0.0/24", "resolvConf": "/nonexistent/resolv"}, {}, ""),
    ("bad-name", {"subnet": "10.9.0.0/24"}, {"name": "a/b"}, ""),
    ("no-name", {"subnet": "10.9.0.0/24"}, {"name": ""}, ""),
)

# The reference's message comes from Go's JSON decoder here; jaring names the key instead.
DECODER_MESSAGES = {"bad-subnet"}


@pytest.mark.parametrize(("ident", "ipam", "top", "args"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_fails_like_reference(
    ident: str, ipam: dict[str, Any], top: dict[str, Any], args: str, tmp_path: Path
) -> None:
    outcomes = []
    for name, runner in (
        ("ref", reference_runner("host-local")),
        ("nat", inprocess_runner(PLUGIN)),
    ):
        data_dir = tmp_path / name
        conf = {
            "cniVersion": "1.0.0",
            "name": "bad",
            **top,
            "ipam": {"type": "host-local", **ipam, "dataDir": str(data_dir)},
        }
        outcomes.append(runner("ADD", conf, container_id="ctr-x", ifname="eth0", args=args))
        # A failed ADD leaves no address behind.
        assert not [f for files in snapshot(data_dir).values() for f in files if f[0].isdigit()]
    ref, nat = outcomes
    assert not ref.ok, ref
    assert not nat.ok, nat
    if ident not in DECODER_MESSAGES and ident != "request-two-in-one-set":
        assert nat.msg == ref.msg

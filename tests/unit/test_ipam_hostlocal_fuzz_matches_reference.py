"""Generated host-local configs: native and reference agree on every one.

Hypothesis draws range sets (families, subnets that may overlap, be too small
or carry host bits, range bounds and gateways inside or outside) and at most
one requested address; an ADD/ADD/DEL/ADD sequence must print the same
results or the same error messages and leave byte-identical stores.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jaring.delegates.hostlocal import PLUGIN

from .ipam_harness import (
    comparable,
    inprocess_runner,
    reference_available,
    reference_runner,
    snapshot,
)

pytestmark = pytest.mark.skipif(
    not reference_available("host-local"), reason="reference host-local not installed"
)

REF = reference_runner("host-local")
NATIVE = inprocess_runner(PLUGIN)


def address(v6: bool, block: int, offset: int) -> str:
    return f"2001:db8:{block}::{offset:x}" if v6 else f"10.44.{block}.{offset}"


@st.composite
def ranges(draw: st.DrawFn, v6: bool, block: int) -> dict[str, Any]:
    """Mostly valid ranges; now and then too small, host bits, or bounds outside."""
    prefix = draw(st.sampled_from([25, 27, 28, 29, 30, 30, 31]))
    size = 2 ** (32 - prefix)
    host_bits = draw(st.sampled_from([0] * 9 + [1]))
    doc: dict[str, Any] = {
        "subnet": f"{address(v6, block, host_bits)}/{prefix + (96 if v6 else 0)}"
    }
    low, high = sorted(draw(st.integers(0, size - 1)) for _ in range(2))
    if draw(st.sampled_from([False] * 9 + [True])):
        low, high = high, low
    for key, offset in (("rangeStart", low), ("rangeEnd", high)):
        if draw(st.booleans()):
            doc[key] = address(v6, block, offset)
    if draw(st.booleans()):
        outside = draw(st.sampled_from([False] * 4 + [True]))
        doc["gateway"] = address(v6, 9 if outside else block, draw(st.integers(0, size - 1)))
    return doc


@st.composite
def configs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], str]:
    blocks = iter(draw(st.permutations(range(6))))
    sets = []
    for _ in range(draw(st.integers(1, 2))):
        v6 = draw(st.booleans())
        mixed = draw(st.sampled_from([False] * 9 + [True]))
        count = draw(st.integers(1, 2))
        sets.append(
            [draw(ranges(v6 if not (mixed and n) else not v6, next(blocks))) for n in range(count)]
        )
    if draw(st.sampled_from([False] * 9 + [True])):  # a set overlapping another
        sets.append([sets[0][0]])
    ipam: dict[str, Any] = {"ranges": sets}
    if draw(st.booleans()):
        ipam["routes"] = [{"dst": "0.0.0.0/0"}]
    top: dict[str, Any] = {}
    args = ""
    how = draw(st.sampled_from(["none", "none", "runtime", "args"]))
    wanted = address(draw(st.booleans()), draw(st.integers(0, 5)), draw(st.integers(0, 127)))
    if how == "runtime":
        top["runtimeConfig"] = {"ips": [wanted]}
    elif how == "args":
        args = f"IgnoreUnknown=1;IP={wanted}"
    return ipam, top, args


STEPS = (("ADD", "c1"), ("ADD", "c2"), ("DEL", "c1"), ("ADD", "c3"))


def trace(
    runner: Any, case: tuple[dict[str, Any], dict[str, Any], str], data_dir: Path
) -> list[Any]:
    ipam, top, args = case
    conf = {
        "cniVersion": "1.0.0",
        "name": "fuzz",
        **top,
        "ipam": {"type": "host-local", **ipam, "dataDir": str(data_dir)},
    }
    out = []
    for command, cid in STEPS:
        result = runner(command, conf, container_id=cid, args=args)
        out.append((command, cid, comparable(result), snapshot(data_dir)))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_generated_configs_match_the_reference(
    case: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    with tempfile.TemporaryDirectory(prefix="jaring-ipam-fuzz-") as tmp:
        ref = trace(REF, case, Path(tmp) / "ref")
        nat = trace(NATIVE, case, Path(tmp) / "nat")
    for want, got in zip(ref, nat, strict=True):
        assert got == want
    event(f"calls that succeeded: {sum(1 for step in ref if step[2][0])} of {len(STEPS)}")

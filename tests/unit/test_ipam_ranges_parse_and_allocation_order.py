"""host-local ranges: defaults, validation, and the round-robin candidate order.

`candidates` must yield every allocatable address of a range set exactly once,
never a gateway, starting after the last reserved address and wrapping
across ranges: checked against a plain model over generated range sets.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaring.cni.errors import CniError
from jaring.delegates.iprange import (
    RangeError,
    RangeSet,
    candidates,
    parse_range,
    parse_range_set,
)


def test_v4_defaults_skip_network_and_broadcast_and_gateway_is_first() -> None:
    r = parse_range({"subnet": "10.1.2.0/24"}, "r")
    assert (str(r.start), str(r.end), str(r.gateway)) == ("10.1.2.1", "10.1.2.254", "10.1.2.1")


def test_v6_default_end_is_the_last_address() -> None:
    r = parse_range({"subnet": "2001:db8::/120"}, "r")
    assert (str(r.start), str(r.end)) == ("2001:db8::1", "2001:db8::ff")


def test_keys_match_in_any_case_like_go_json() -> None:
    r = parse_range({"SUBNET": "10.1.2.0/24", "rangeend": "10.1.2.9"}, "r")
    assert str(r.end) == "10.1.2.9"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"subnet": "10.0.0.0/31"}, "too small"),
        ({"subnet": "10.0.0.4/24"}, "host bits set"),
        ({"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"}, "RangeStart 10.0.1.1 not in"),
        ({"subnet": "10.0.0.0/24", "rangeEnd": "10.0.0.0"}, "RangeEnd 10.0.0.0 not in"),
        ({"subnet": "::ffff:10.0.0.0/120"}, "version mismatch"),
        ({}, "not v4 nor v6"),
    ],
)
def test_bad_ranges_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(RangeError, match=message):
        parse_range(doc, "r")


@pytest.mark.parametrize(
    "doc",
    [{"subnet": 24}, {"subnet": "10.0.0.0/24", "gateway": "x"}, {"subnet": "10.0.0.0/24/1"}],
)
def test_malformed_values_are_invalid_config(doc: dict[str, Any]) -> None:
    with pytest.raises(CniError) as err:
        parse_range(doc, "r")
    assert err.value.code == 7


def test_ranges_with_one_subnet_but_disjoint_spans_do_not_overlap() -> None:
    rs = parse_range_set(
        [
            {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.11"},
            {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.20", "rangeEnd": "10.0.0.21"},
        ],
        "set",
    )
    assert [str(ip) for ip, _ in candidates(rs, None)] == [
        "10.0.0.10",
        "10.0.0.11",
        "10.0.0.20",
        "10.0.0.21",
    ]


def model(rs: RangeSet, last: Any) -> list[str]:
    """All addresses in range order, rotated to start after `last`, minus gateways."""
    cycle = [
        (ip, r)
        for r in rs.ranges
        for ip in (ipaddress.ip_address(n) for n in range(int(r.start), int(r.end) + 1))
    ]
    positions = [i for i, (ip, _) in enumerate(cycle) if ip == last]
    if positions:
        cycle = cycle[positions[0] + 1 :] + cycle[: positions[0] + 1]
    return [str(ip) for ip, r in cycle if ip != r.gateway]


@st.composite
def range_sets(draw: st.DrawFn) -> tuple[RangeSet, Any]:
    v6 = draw(st.booleans())
    count = draw(st.integers(1, 3))
    docs = []
    for n in range(count):
        prefix = draw(st.integers(26, 30)) if not v6 else draw(st.integers(122, 126))
        base = f"10.{n}.0.0/{prefix}" if not v6 else f"2001:db8:{n}::/{prefix}"
        net = ipaddress.ip_network(base)
        hosts = list(range(int(net.network_address) + 1, int(net.broadcast_address)))
        lo = draw(st.integers(0, len(hosts) - 1))
        hi = draw(st.integers(lo, len(hosts) - 1))
        doc: dict[str, Any] = {"subnet": base}
        if draw(st.booleans()):
            doc["rangeStart"] = str(ipaddress.ip_address(hosts[lo]))
            doc["rangeEnd"] = str(ipaddress.ip_address(hosts[hi]))
        if draw(st.booleans()):
            doc["gateway"] = str(ipaddress.ip_address(draw(st.sampled_from(hosts))))
        docs.append(doc)
    rs = parse_range_set(docs, "set")
    everything = [
        ipaddress.ip_address(n) for r in rs.ranges for n in range(int(r.start), int(r.end) + 1)
    ]
    last = draw(
        st.one_of(
            st.none(), st.sampled_from(everything), st.just(ipaddress.ip_address("192.0.2.1"))
        )
    )
    return rs, last


@settings(max_examples=300, deadline=None)
@given(range_sets())
def test_candidates_are_every_free_address_once_in_round_robin_order(
    case: tuple[RangeSet, Any],
) -> None:
    rs, last = case
    got = [str(ip) for ip, r in candidates(rs, last)]
    assert got == model(rs, last)
    assert len(got) == len(set(got))
    for ip, r in candidates(rs, last):
        assert r.contains(ip)
        assert ip != r.gateway

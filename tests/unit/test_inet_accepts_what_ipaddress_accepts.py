"""`jaring.cni.inet` accepts exactly the text `ipaddress` accepts, with the same
family: `ip_address`, and `ip_interface` / `ip_network(strict=False)` (which
read prefixes alike). Hypothesis: text over the addresses' own alphabet,
generated addresses with every prefix and mask form, and any text."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaring.cni import inet

NEAR = st.text(alphabet="0123456789abcdefABCDEF:./%x ", max_size=45)


def oracle_address(text: str) -> int:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return 0


def oracle_interface(text: str) -> int:
    try:
        version = ipaddress.ip_interface(text).version
    except ValueError:
        return 0
    assert ipaddress.ip_network(text, strict=False).version == version
    return version


def oracle_network(text: str) -> int:
    try:
        return ipaddress.ip_network(text, strict=False).version
    except ValueError:
        return 0


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Real addresses in their usual and unusual spellings, some with a prefix."""
    v6 = draw(st.booleans())
    address = draw(st.ip_addresses(v=6 if v6 else 4))
    text = draw(
        st.sampled_from(
            [str(address), address.exploded, str(address).upper()]
            + (
                [f"{address}%eth0", f"{address}%", f"::ffff:{ipaddress.IPv4Address(7)}"]
                if v6
                else []
            )
            + ([".".join(f"0{o}" for o in str(address).split("."))] if not v6 else [])
        )
    )
    bits = 128 if v6 else 32
    suffix = draw(
        st.sampled_from(["", "/", "//1"])
        | st.integers(0, bits + 2).map(lambda n: f"/{n}")
        | st.integers(0, bits).map(lambda n: f"/0{n}")
        | st.integers(0, 32).map(lambda n: f"/{ipaddress.IPv4Network(f'0.0.0.0/{n}').netmask}")
        | st.integers(0, 32).map(lambda n: f"/{ipaddress.IPv4Network(f'0.0.0.0/{n}').hostmask}")
        | st.ip_addresses(v=4).map(lambda a: f"/{a}")
    )
    return text + suffix


@settings(max_examples=3000)
@given(NEAR | addresses() | st.text(max_size=20))
def test_same_answers_as_ipaddress(text: str) -> None:
    assert inet.address_version(text) == oracle_address(text)
    assert inet.interface_version(text) == oracle_interface(text)
    assert inet.interface_version(text) == oracle_network(text)


@pytest.mark.parametrize(
    ("text", "address", "interface"),
    [
        ("10.1.0.5", 4, 4),
        ("10.1.0.5/24", 0, 4),
        ("10.1.0.5/255.255.255.0", 0, 4),
        ("10.1.0.5/0.0.0.255", 0, 4),
        ("10.1.0.5/255.0.255.0", 0, 0),
        ("010.1.0.5", 0, 0),
        ("10.1.0.5/33", 0, 0),
        ("fd00::5/64", 0, 6),
        ("fe80::1%eth0", 6, 6),
        ("::ffff:10.1.0.5", 6, 6),
        ("fd00::5/129", 0, 0),
        ("fd00::5/ffff::", 0, 0),
        ("1.2.3.4/64", 0, 0),
        ("", 0, 0),
    ],
)
def test_the_usual_and_the_tricky(text: str, address: int, interface: int) -> None:
    assert (inet.address_version(text), inet.interface_version(text)) == (address, interface)
    assert (oracle_address(text), oracle_interface(text)) == (address, interface)

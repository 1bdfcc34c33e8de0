"""Native static IPAM gives the reference binary's results and errors.

Each config runs through /usr/lib/cni/static and through jaring's static
(in-process for every spec version, and the `jaring-static` executable), with
CNI_ARGS IP=/GATEWAY=, args.cni.ips and runtimeConfig ips in every precedence
combination; CHECK against a prevResult; DEL whatever the config.
"""

from __future__ import annotations

from typing import Any

import pytest
from jaring.cni.version import SUPPORTED
from jaring.delegates.static import PLUGIN

from .ipam_harness import (
    comparable,
    inprocess_runner,
    native_exec_runner,
    reference_available,
    reference_runner,
)

pytestmark = pytest.mark.skipif(
    not reference_available("static"), reason="reference static not installed"
)

REF = reference_runner("static")
NATIVE = inprocess_runner(PLUGIN)

DUAL = {
    "addresses": [
        {"address": "10.9.0.5/24", "gateway": "10.9.0.1"},
        {"address": "2001:DB8::5/64", "gateway": "2001:db8::1"},
    ],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "2001:db8::1"}],
    "dns": {
        "nameservers": ["192.0.2.53", "2001:db8::53"],
        "domain": "example.org",
        "search": ["a.example.org", "b.example.org"],
        "options": ["ndots:2"],
    },
}

# (id, ipam, top-level extras, CNI_ARGS)
CASES: tuple[tuple[str, dict[str, Any], dict[str, Any], str], ...] = (
    ("dual-stack-routes-dns", DUAL, {}, ""),
    ("no-addresses", {}, {}, ""),
    ("address-without-gateway", {"addresses": [{"address": "10.9.0.5/24"}]}, {}, ""),
    ("host-route-keeps-host-bits", {"routes": [{"dst": "10.1.2.3/8", "gw": "10.9.0.2"}]}, {}, ""),
    (
        "v4-mapped",
        {"addresses": [{"address": "::ffff:10.9.0.5/120", "gateway": "::ffff:10.9.0.1"}]},
        {},
        "",
    ),
    (
        "several-per-family",
        {"addresses": [{"address": "10.9.0.5/24"}, {"address": "10.9.1.5/24"}]},
        {},
        "",
    ),
    (
        "cni-args-append",
        {"addresses": [{"address": "10.9.0.5/24"}]},
        {},
        "IP=10.9.1.6/24,2001:db8::9/64",
    ),
    (
        "cni-args-gateway-only-for-args-ips",
        {"addresses": [{"address": "10.9.1.5/24"}]},
        {},
        "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.9.1.6/24;GATEWAY=10.9.1.1",
    ),
    ("cni-args-last-gateway-wins", {}, {}, "IP=10.9.1.7/24,10.9.1.8/24;GATEWAY=10.9.1.1,10.9.1.2"),
    ("cni-args-gateway-spaces", {}, {}, "IP=10.9.1.7/24;GATEWAY=10.9.2.1, 10.9.1.1"),
    ("args-cni-replace", DUAL, {"args": {"cni": {"ips": ["10.2.2.2/24"]}}}, "IP=10.9.1.6/24"),
    (
        "runtime-config-replaces-all",
        DUAL,
        {
            "runtimeConfig": {"ips": ["10.1.1.1/24", "2001:db8:1::1/64"]},
            "args": {"cni": {"ips": ["10.2.2.2/24"]}},
        },
        "IP=10.9.1.6/24;GATEWAY=10.9.1.1",
    ),
)


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize(("ident", "ipam", "top", "args"), CASES, ids=[c[0] for c in CASES])
def test_add_matches_reference(
    ident: str, ipam: dict[str, Any], top: dict[str, Any], args: str, version: str
) -> None:
    conf = {"cniVersion": version, "name": "static-net", **top, "ipam": {"type": "static", **ipam}}
    ref = REF("ADD", conf, container_id="ctr", args=args)
    nat = NATIVE("ADD", conf, container_id="ctr", args=args)
    assert ref.ok, ref
    assert comparable(nat) == comparable(ref)


@pytest.mark.parametrize(("ident", "ipam", "top", "args"), CASES[:4], ids=[c[0] for c in CASES[:4]])
def test_executable_matches_reference(
    ident: str, ipam: dict[str, Any], top: dict[str, Any], args: str
) -> None:
    conf = {"cniVersion": "0.4.0", "name": "static-net", **top, "ipam": {"type": "static", **ipam}}
    ref = REF("ADD", conf, container_id="ctr", args=args)
    nat = native_exec_runner("static")("ADD", conf, container_id="ctr", args=args)
    assert comparable(nat) == comparable(ref)


BAD: tuple[tuple[str, dict[str, Any], dict[str, Any], str], ...] = (
    ("no-ipam", {}, {"ipam": None}, ""),
    ("address-not-cidr", {"addresses": [{"address": "10.9.0.5"}]}, {}, ""),
    ("args-ip-not-cidr", {}, {}, "IP=10.9.1.5"),
    ("args-bad-gateway", {}, {}, "IP=10.9.1.5/24;GATEWAY=x"),
    ("args-unknown", {}, {}, "IP=10.9.1.5/24;X=1"),
    ("args-cni-not-cidr", {}, {"args": {"cni": {"ips": ["10.2.2.2"]}}}, ""),
    ("runtime-not-cidr", {}, {"runtimeConfig": {"ips": ["10.2.2.2"]}}, ""),
    ("bad-gateway", {"addresses": [{"address": "10.9.0.5/24", "gateway": "bad"}]}, {}, ""),
    ("bad-name", {}, {"name": "a/b"}, ""),
)
DECODER_MESSAGES = {"bad-gateway"}


@pytest.mark.parametrize(("ident", "ipam", "top", "args"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_fails_like_reference(
    ident: str, ipam: dict[str, Any], top: dict[str, Any], args: str
) -> None:
    conf = {"cniVersion": "1.0.0", "name": "static-net", "ipam": {"type": "static", **ipam}, **top}
    ref = REF("ADD", conf, container_id="ctr", args=args)
    nat = NATIVE("ADD", conf, container_id="ctr", args=args)
    assert not ref.ok
    assert not nat.ok
    if ident not in DECODER_MESSAGES:
        assert nat.msg == ref.msg


def prev(ips: list[dict[str, str]]) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "ips": ips}


@pytest.mark.parametrize(
    ("ident", "prev_result", "ok"),
    [
        ("matches", prev([{"address": "10.9.0.5/24", "gateway": "10.9.0.1"}]), True),
        ("wrong-gateway", prev([{"address": "10.9.0.5/24", "gateway": "10.9.0.2"}]), False),
        ("no-prev-result", None, False),
    ],
)
def test_check_matches_reference(ident: str, prev_result: Any, ok: bool) -> None:
    conf: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "name": "static-net",
        "ipam": {
            "type": "static",
            "addresses": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1"}],
        },
    }
    if prev_result is not None:
        conf["prevResult"] = prev_result
    ref = REF("CHECK", conf, container_id="ctr")
    nat = NATIVE("CHECK", conf, container_id="ctr")
    assert ref.ok is ok
    assert comparable(nat) == comparable(ref)


def test_check_fails_when_an_address_is_missing_where_the_reference_passes() -> None:
    """The reference 1.1.1 only compares gateways of addresses it finds; jaring wants them all."""
    conf = {
        "cniVersion": "1.0.0",
        "name": "static-net",
        "prevResult": prev([{"address": "10.9.0.6/24"}]),
        "ipam": {"type": "static", "addresses": [{"address": "10.9.0.5/24"}]},
    }
    assert REF("CHECK", conf, container_id="ctr").ok
    nat = NATIVE("CHECK", conf, container_id="ctr")
    assert not nat.ok
    assert "10.9.0.5 missing" in nat.msg


@pytest.mark.parametrize("ipam", [None, {"type": "static", "addresses": [{"address": "bad"}]}])
def test_del_succeeds_whatever_the_config(ipam: Any) -> None:
    conf = {"cniVersion": "1.0.0", "name": "static-net", "ipam": ipam}
    assert REF("DEL", conf, container_id="ctr").ok
    assert NATIVE("DEL", conf, container_id="ctr").ok

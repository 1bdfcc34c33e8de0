"""Differential harness: one config through the reference plugin and through jaring.

Each side gets fresh host parts (`Side`: netns, bridge, macvlan master veth,
host-device veth, IPAM dir, container ID), runs the same config through a
`Runner` (reference binary, `jaring-<type>` executable, or the in-process
`PLUGIN` through `skel.run`), and is reduced to a normalised `snapshot`: pod
links/addresses/routes/sysctls, host bridge and ports, iptables masq rules,
nft spoof-check rules, IPAM store files. Random names and MACs are masked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaring.cni import skel
from jaring.cni.registry import load

REFERENCE = Path("/usr/lib/cni")
VENV_BIN = Path(sys.executable).parent
VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
REFERENCE_MAX = "1.0.0"  # containernetworking-plugins 1.1.1 predates CNI 1.1.0
# Seconds the kernel may take to settle carrier/operstate (linkwatch); the kernel
# lab VM runs 10-20x slower than this machine.
SETTLE = 30.0 if os.environ.get("KERNEL_LAB_VM") else 5.0
MAC = re.compile(r"\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b")
VETH = re.compile(r"\bveth[0-9a-f]{8}\b")


def sh(*argv: str, check: bool = True, stdin: str = "") -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def ipj(*argv: str) -> Any:
    out = sh("ip", "-j", *argv)
    return json.loads(out) if out.strip() else []


@dataclass
class Side:
    """One side's host parts; everything is unique to it and removed by `destroy`."""

    tmp: Path
    network: str = "difnet"
    master_kind: str = "veth"  # "dummy" in the kernel lab
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.netns = f"jdn{self.tag}"
        self.netns_path = f"/run/netns/{self.netns}"
        self.bridge = f"jdb{self.tag}"
        self.master = f"jdm{self.tag}"
        self.device = f"jdd{self.tag}"
        self.container_id = f"cid{self.tag}"
        self.data_dir = self.tmp / f"ipam{self.tag}"
        self.pods: list[str] = [self.netns]

    def create(self) -> None:
        sh("ip", "netns", "add", self.netns)
        for name in (self.master, self.device):
            if name == self.master and self.master_kind == "dummy":
                sh("ip", "link", "add", name, "type", "dummy")
                continue
            sh("ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
            sh("ip", "link", "set", f"{name}p", "up")
        sh("ip", "link", "set", self.master, "up")

    def destroy(self) -> None:
        for pod in self.pods:
            sh("ip", "netns", "del", pod, check=False)
        for name in (self.bridge, self.master, self.device, f"{self.device}p"):
            sh("ip", "link", "del", name, check=False)
        for family in ("iptables", "ip6tables"):
            _drop_chain(family, masq_chain(self.network, self.container_id))

    def substitute(self, text: str) -> str:
        """Mask this side's names so two sides compare equal."""
        for value, mask in (
            (self.netns_path, "NETNS"),
            (self.netns, "NETNS"),
            (self.bridge, "BRIDGE"),
            (f"{self.device}p", "DEVICEPEER"),
            (self.device, "DEVICE"),
            (f"{self.master}p", "MASTERPEER"),
            (self.master, "MASTER"),
            (masq_chain(self.network, self.container_id), "CHAIN"),
            (self.container_id, "CID"),
            (str(self.data_dir), "DATADIR"),
        ):
            text = text.replace(value, mask)
        return VETH.sub("VETH", MAC.sub("MAC", text))

    def render(self, template: Mapping[str, Any], version: str) -> bytes:
        text = json.dumps({"cniVersion": version, "name": self.network, **template})
        for key, value in (
            ("@BRIDGE@", self.bridge),
            ("@MASTER@", self.master),
            ("@DEVICE@", self.device),
            ("@DATADIR@", str(self.data_dir)),
        ):
            text = text.replace(key, value)
        return text.encode()


def masq_chain(network: str, container_id: str) -> str:
    return ("CNI-" + hashlib.sha512((network + container_id).encode()).hexdigest())[:28]


def _drop_chain(tool: str, chain: str) -> None:
    rules = sh(tool, "-w", "-t", "nat", "-S", "POSTROUTING", check=False)
    for line in rules.splitlines():
        if line.endswith(f"-j {chain}"):
            args = line.split()[1:]
            sh(tool, "-w", "-t", "nat", "-D", *_unquote(args), check=False)
    sh(tool, "-w", "-t", "nat", "-F", chain, check=False)
    sh(tool, "-w", "-t", "nat", "-X", chain, check=False)


def _unquote(args: list[str]) -> list[str]:
    import shlex

    return shlex.split(" ".join(args))


@dataclass(frozen=True)
class Outcome:
    code: int
    doc: dict[str, Any] | None


class Runner:
    """How a side runs a plugin: 'ref', 'bin' (jaring-<type>) or 'inproc' (PLUGIN)."""

    def __init__(self, how: str, plugin_type: str) -> None:
        self.how = how
        self.plugin_type = plugin_type

    def __call__(self, command: str, side: Side, stdin: bytes, *, ifname: str = "eth0") -> Outcome:
        environ = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": side.container_id,
            "CNI_NETNS": side.netns_path,
            "CNI_IFNAME": ifname,
            "CNI_PATH": str(REFERENCE),
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        if self.how == "inproc":
            code, out = skel.run(load(self.plugin_type), environ=environ, stdin=stdin)
        else:
            if self.how == "ref":
                binary = REFERENCE / self.plugin_type
            else:
                binary = VENV_BIN / f"jaring-{self.plugin_type}"
            done = subprocess.run(
                [str(binary)], input=stdin, env=environ, capture_output=True, check=False
            )
            code, out = done.returncode, done.stdout
        doc = json.loads(out) if out.strip() else None
        return Outcome(code, doc)


# --- snapshots --------------------------------------------------------------

LINK_KEYS = ("ifname", "ifalias", "link_type", "mtu", "txqlen", "operstate", "promiscuity", "qdisc")


def _flags(flags: list[str]) -> list[str]:
    return sorted(f for f in flags if f not in ("M-DOWN",))


def _link(item: dict[str, Any]) -> dict[str, Any]:
    out = {key: item.get(key) for key in LINK_KEYS}
    out["flags"] = _flags(item.get("flags", []))
    out["has_peer_elsewhere"] = "link_netnsid" in item or "link_index" in item
    info = item.get("linkinfo", {})
    out["kind"] = info.get("info_kind", "")
    data = info.get("info_data", {})
    out["data"] = {
        k: v for k, v in data.items() if k in ("mode", "vlan_filtering", "stp_state", "flags")
    }
    slave = info.get("info_slave_data", {})
    out["port"] = {k: slave.get(k) for k in ("hairpin", "state", "learning", "flood") if k in slave}
    return out


def _addrs(info: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in info:
        for a in item.get("addr_info", []):
            if a.get("scope") == "link" and a.get("family") == "inet6":
                continue  # derived from the (random) MAC
            found.append(
                {
                    "dev": item["ifname"],
                    "local": a.get("local"),
                    "prefixlen": a.get("prefixlen"),
                    "broadcast": a.get("broadcast"),
                    "scope": a.get("scope"),
                    "nodad": bool(a.get("nodad")),
                }
            )
    return sorted(found, key=json.dumps)


def _routes(prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    routes = []
    for family in ("-4", "-6"):
        for r in ipj(*prefix, family, "route", "show", "table", "main"):
            if r.get("dst", "").startswith("fe80::"):
                continue
            keep = ("dst", "gateway", "dev", "protocol", "scope", "metric", "prefsrc", "type")
            routes.append({k: r.get(k) for k in keep})
    return sorted(routes, key=json.dumps)


def _sysctl(netns: str, key: str) -> str:
    return sh("ip", "netns", "exec", netns, "sysctl", "-n", key, check=False).strip()


def pod_state(side: Side, ifname: str = "eth0") -> dict[str, Any]:
    prefix = ("-n", side.netns)
    links = sorted((_link(item) for item in ipj(*prefix, "-d", "link", "show")), key=json.dumps)
    state: dict[str, Any] = {
        "links": links,
        "addrs": _addrs(ipj(*prefix, "addr", "show")),
        "routes": _routes(prefix),
    }
    if any(link["ifname"] == ifname for link in links):
        state["sysctl"] = {
            key: _sysctl(side.netns, key.format(ifname))
            for key in (
                "net.ipv6.conf.{}.accept_dad",
                "net.ipv4.conf.{}.arp_notify",
                "net.ipv6.conf.{}.disable_ipv6",
            )
        }
    return state


def host_state(side: Side) -> dict[str, Any]:
    state: dict[str, Any] = {}
    bridge = ipj("-d", "link", "show", "dev", side.bridge) if _exists(side.bridge) else []
    if bridge:
        state["bridge"] = _link(bridge[0])
        state["bridge_addrs"] = _addrs(ipj("addr", "show", "dev", side.bridge))
        ports = ipj("-d", "link", "show", "master", side.bridge)
        state["ports"] = sorted((_link(p) for p in ports), key=json.dumps)
        vlans = json.loads(sh("bridge", "-j", "vlan", "show") or "[]")
        names = {p["ifname"] for p in ports} | {side.bridge}
        state["vlans"] = sorted(
            (
                {"port": v["ifname"], "vlans": v.get("vlans", [])}
                for v in vlans
                if v["ifname"] in names
            ),
            key=json.dumps,
        )
        gateway_ports = [p for p in ports if p["ifname"].startswith(f"{side.bridge}.")]
        state["vlan_gateways"] = sorted((_link(g) for g in gateway_ports), key=json.dumps)
    for name in (side.device, side.master):
        state[name] = (
            [_link(i) for i in ipj("-d", "link", "show", "dev", name)]
            if _exists(name)
            else "absent"
        )
        if _exists(name):
            state[f"{name}_addrs"] = _addrs(ipj("addr", "show", "dev", name))
    chain = masq_chain(side.network, side.container_id)
    state["iptables"] = sorted(
        line
        for tool in ("iptables", "ip6tables")
        for line in sh(tool, "-w", "-t", "nat", "-S").splitlines()
        if chain in line or side.container_id in line
    )
    state["nft"] = _nft(side)
    state["ipam"] = _store(side)
    return state


def _exists(name: str) -> bool:
    done = subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, check=False)
    return done.returncode == 0


def _nft(side: Side) -> list[str]:
    out = sh("nft", "list", "table", "bridge", "nat", check=False)
    keep = []
    for line in out.splitlines():
        text = line.strip()
        if side.container_id in text:
            keep.append(re.sub(r"\s+", " ", text))
    return sorted(keep)


def _store(side: Side) -> dict[str, str]:
    root = side.data_dir / side.network
    if not root.is_dir():
        return {}
    return {p.name: p.read_text().replace("\r", "\\r") for p in sorted(root.iterdir())}


def snapshot(side: Side, ifname: str = "eth0") -> dict[str, Any]:
    """The normalised state of the side (pod and host), as JSON-able data."""
    raw = {"pod": pod_state(side, ifname), "host": host_state(side)}
    masked: dict[str, Any] = json.loads(side.substitute(json.dumps(raw, sort_keys=True)))
    return _resorted(masked)


# Lists sorted by raw (random) names: after masking, their order must be redone,
# or two veth ports of one bridge compare in a random order.
_NAME_SORTED = frozenset({"ports", "vlan_gateways", "links"})


def _resorted(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: sorted((_resorted(v) for v in value), key=json.dumps)
            if key in _NAME_SORTED and isinstance(value, list)
            else _resorted(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_resorted(v) for v in node]
    return node


def normalise_result(side: Side, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    text = side.substitute(json.dumps(doc, sort_keys=True))
    out: dict[str, Any] = json.loads(text)
    return out


def reference_version(version: str) -> str:
    """The version the reference is asked in: 1.1.0 is compared against its 1.0.0."""
    return REFERENCE_MAX if version == "1.1.0" else version


def kernel_has(kind: str) -> bool:
    """Whether this kernel can make a `kind` link (ipvlan, dummy, vlan): try one."""
    name = f"jdk{uuid.uuid4().hex[:6]}"
    if kind == "dummy":
        argv = ["ip", "link", "add", name, "type", "dummy"]
        cleanup = [name]
    else:
        lower = f"{name}l"
        sh("ip", "link", "add", lower, "type", "veth", "peer", "name", f"{lower}p", check=False)
        extra = ["id", "7"] if kind == "vlan" else []
        argv = ["ip", "link", "add", "link", lower, name, "type", kind, *extra]
        cleanup = [name, lower]
    ok = subprocess.run(argv, capture_output=True, check=False).returncode == 0
    for leftover in cleanup:
        sh("ip", "link", "del", leftover, check=False)
    return ok


@dataclass(frozen=True)
class Case:
    """One differential case: plugin type, config template, spec version, our runner."""

    plugin_type: str
    template: Mapping[str, Any]
    version: str
    how: str  # "bin" or "inproc"
    ifname: str = "eth0"


def _with_prev(stdin: bytes, result: dict[str, Any] | None) -> bytes:
    conf = json.loads(stdin)
    conf["prevResult"] = result
    return json.dumps(conf).encode()


def assert_same(ours: object, ref: object, what: str) -> None:
    """Equal, or an AssertionError with a unified diff (harness is not assert-rewritten)."""
    if ours == ref:
        return
    import difflib

    a = json.dumps(ref, indent=1, sort_keys=True).splitlines()
    b = json.dumps(ours, indent=1, sort_keys=True).splitlines()
    diff = "\n".join(difflib.unified_diff(a, b, "reference", "jaring", lineterm="", n=2))
    raise AssertionError(f"{what} differs from the reference:\n{diff}")


def assert_states_match(ours: Side, ref: Side, ifname: str, what: str) -> None:
    """Snapshots equal, polled against a deadline: carrier and operstate settle
    asynchronously in the kernel (linkwatch), so a snapshot taken right after a
    plugin returns may still show a transition."""
    deadline = time.monotonic() + SETTLE
    pause = 0.01
    while True:
        mine, theirs = snapshot(ours, ifname), snapshot(ref, ifname)
        if mine == theirs or time.monotonic() > deadline:
            assert_same(mine, theirs, what)
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def compare(case: Case, ref: Side, ours: Side) -> None:
    """Run ADD, CHECK, DEL, DEL on both sides; assert equal results and states."""
    ref_run = Runner("ref", case.plugin_type)
    our_run = Runner(case.how, case.plugin_type)
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
        assert_states_match(ours, ref, case.ifname, "state after ADD")
    else:
        # The reference leaks the veth when a later step fails; jaring undoes it all.
        state = snapshot(ours, case.ifname)
        assert not any(link["ifname"] == case.ifname for link in state["pod"]["links"]), state
        assert not state["host"].get("ports"), state
        assert not [f for f in state["host"]["ipam"] if f[0].isdigit()], state

    if ref_add.code == 0 and case.version not in {"0.3.0", "0.3.1"}:
        # Only ours must pass: the reference's CHECK fails on its own state when a
        # route has no gateway (it looks for the route with GW nil).
        our_check = our_run("CHECK", ours, _with_prev(our_in, our_add.doc), ifname=case.ifname)
        assert our_check.code == 0, our_check

    for _ in range(2):  # DEL is idempotent on both sides
        ref_run("DEL", ref, _with_prev(ref_in, ref_add.doc), ifname=case.ifname)
        our_del = our_run("DEL", ours, _with_prev(our_in, our_add.doc), ifname=case.ifname)
        assert our_del.code == 0, our_del
        if ref_add.code == 0:
            assert_states_match(ours, ref, case.ifname, "state after DEL")
        else:
            # The reference keeps the bridge it made for a failed ADD; jaring removed it.
            mine, theirs = snapshot(ours, case.ifname), snapshot(ref, case.ifname)
            assert "bridge" not in mine["host"], mine["host"]
            assert_same(mine["pod"], theirs["pod"], "pod state after DEL")

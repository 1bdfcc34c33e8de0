"""The bridge plugin's `ipMasq`: one iptables nat chain per (network, container).

Same chain name, comment and rules as the reference's `ip.SetupIPMasq`
(`CNI-` + sha512(name+containerID)[:24]; ACCEPT to the pod's subnet,
MASQUERADE except multicast; POSTROUTING -s podIP jumps to it), written with
one `iptables-restore --noflush` per family. DEL removes every jump to the
chain and the chain itself, even when the pod's addresses are unknown.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jaring.cni.errors import CniError, Code

MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], str], Completed]


def run_tool(argv: Sequence[str], stdin: str) -> Completed:
    try:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        return Completed(127, "", str(exc))
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def chain_name(network: str, container_id: str) -> str:
    return ("CNI-" + hashlib.sha512((network + container_id).encode()).hexdigest())[:28]


def comment(network: str, container_id: str) -> str:
    return f'name: "{network}" id: "{container_id}"'


def _fail(what: str, done: Completed) -> CniError:
    return CniError(Code.OTHER, f"ipMasq: {what} failed", (done.stderr or done.stdout).strip())


def setup(
    addresses: Sequence[str], *, network: str, container_id: str, run: Runner = run_tool
) -> None:
    """Masquerade traffic from each pod address (CIDR strings) leaving its subnet."""
    chain = chain_name(network, container_id)
    quoted = _rendered(comment(network, container_id))
    for family in (4, 6):
        ours = [ipaddress.ip_interface(a) for a in addresses]
        ours = [a for a in ours if a.version == family]
        if not ours:
            continue
        tool, restore = TOOLS[family]
        listing = run([tool, "-w", "-t", "nat", "-S"], "")
        if listing.returncode != 0:
            raise _fail(f"{tool} -S", listing)
        lines = set(listing.stdout.splitlines())
        script = ["*nat"]
        if f"-N {chain}" not in lines:
            script.append(f":{chain} - [0:0]")
        for addr in ours:
            host = f"{addr.ip}/{addr.max_prefixlen}"
            rules = [
                (chain, f"-d {addr.network} -m comment --comment {quoted} -j ACCEPT"),
                (chain, f"! -d {MULTICAST[family]} -m comment --comment {quoted} -j MASQUERADE"),
                ("POSTROUTING", f"-s {host} -m comment --comment {quoted} -j {chain}"),
            ]
            for target, rule in rules:
                # AppendUnique: our rule text is exactly iptables' own -S rendering.
                rendered = f"-A {target} {rule}"
                if rendered not in lines:
                    script.append(f"-A {target} {rule}")
                    lines.add(rendered)
        script.append("COMMIT")
        done = run([restore, "-w", "--noflush"], "\n".join(script) + "\n")
        if done.returncode != 0:
            raise _fail(restore, done)


def _rendered(text: str) -> str:
    # iptables -S prints a comment in double quotes with inner quotes escaped.
    return '"' + text.replace('"', '\\"') + '"'


def teardown(*, network: str, container_id: str, run: Runner = run_tool) -> None:
    """Remove the chain and every POSTROUTING jump to it; nothing there is success."""
    chain = chain_name(network, container_id)
    for family in (4, 6):
        tool, restore = TOOLS[family]
        listing = run([tool, "-w", "-t", "nat", "-S"], "")
        if listing.returncode != 0:
            if family == 6:
                continue  # no IPv6 netfilter on this host: nothing of ours can be there
            raise _fail(f"{tool} -S", listing)
        script = ["*nat"]
        has_chain = False
        for line in listing.stdout.splitlines():
            if line == f"-N {chain}":
                has_chain = True
            elif line.startswith("-A POSTROUTING ") and line.endswith(f"-j {chain}"):
                script.append("-D" + line[2:])
        if not has_chain and len(script) == 1:
            continue
        if has_chain:
            script += [f"-F {chain}", f"-X {chain}"]
        script.append("COMMIT")
        done = run([restore, "-w", "--noflush"], "\n".join(script) + "\n")
        if done.returncode != 0:
            raise _fail(restore, done)


_OWNER = re.compile(r'--comment "name: \\"(?P<name>[^\\]*)\\" id: \\"(?P<id>[^\\]*)\\""')


def gc(*, network: str, keep: set[str], run: Runner = run_tool) -> list[str]:
    """Tear down this network's chains whose container is not in `keep` (CNI 1.1 GC).

    Returns the container IDs collected. The owner is read back from the
    rules' comment, which names the network and the container.
    """
    stale: set[str] = set()
    for family in (4, 6):
        listing = run([TOOLS[family][0], "-w", "-t", "nat", "-S"], "")
        if listing.returncode != 0:
            continue
        for line in listing.stdout.splitlines():
            found = _OWNER.search(line)
            if found and found["name"] == network and found["id"] not in keep:
                stale.add(found["id"])
    for container_id in sorted(stale):
        teardown(network=network, container_id=container_id, run=run)
    return sorted(stale)

"""The bridge plugin's `macspoofchk`: drop frames from a pod with a foreign source MAC.

Same nftables shape as the reference's `link.SpoofChecker` (table bridge
`nat`, base chain PREROUTING at priority -300, a per-attachment chain
`cni-br-iface-<id>` jumping to `<chain>-mac`, which returns for the pod's MAC
and drops the rest), applied with one `nft -f -`. Teardown tolerates absence.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence

from jaring.cni.errors import CniError, Code

TABLE = "nat"
BASE_CHAIN = "PREROUTING"

Runner = Callable[[Sequence[str], str], tuple[int, str, str]]


def run_nft(argv: Sequence[str], stdin: str) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(
            ["nft", *argv], input=stdin, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def ref_id(container_id: str, ifname: str) -> str:
    return f"{container_id}-{ifname}"


def _chain(ref: str) -> str:
    return f"cni-br-iface-{ref}"


def _comment(ref: str) -> str:
    return f'comment "macspoofchk-{ref}"'


def setup(ref: str, *, host_iface: str, mac: str, run: Runner = run_nft) -> None:
    chain = _chain(ref)
    comment = _comment(ref)
    script = "\n".join(
        [
            f"add table bridge {TABLE}",
            f"add chain bridge {TABLE} {BASE_CHAIN} "
            "{ type filter hook prerouting priority -300; policy accept; }",
            f"add chain bridge {TABLE} {chain}",
            f"add chain bridge {TABLE} {chain}-mac",
            f"flush chain bridge {TABLE} {chain}",
            f"flush chain bridge {TABLE} {chain}-mac",
            f'add rule bridge {TABLE} {BASE_CHAIN} iifname "{host_iface}" jump {chain} {comment}',
            f"add rule bridge {TABLE} {chain} jump {chain}-mac {comment}",
            f"add rule bridge {TABLE} {chain}-mac ether saddr {mac} return {comment}",
            f"add rule bridge {TABLE} {chain}-mac drop {comment}",
        ]
    )
    code, out, err = run(["-f", "-"], script + "\n")
    if code != 0:
        raise CniError(Code.OTHER, "macspoofchk: nft failed", (err or out).strip())


def teardown(ref: str, *, run: Runner = run_nft) -> None:
    """Remove the jump rule and both chains; absent parts are fine."""
    chain = _chain(ref)
    code, out, _ = run(["-a", "list", "chain", "bridge", TABLE, BASE_CHAIN], "")
    script = []
    if code == 0:
        for line in out.splitlines():
            found = re.search(r"# handle (\d+)", line)
            if found and f'"macspoofchk-{ref}"' in line:
                script.append(f"delete rule bridge {TABLE} {BASE_CHAIN} handle {found.group(1)}")
    for name in (chain, f"{chain}-mac"):
        if run(["list", "chain", "bridge", TABLE, name], "")[0] == 0:
            script.append(f"flush chain bridge {TABLE} {name}")
    for name in (chain, f"{chain}-mac"):
        if run(["list", "chain", "bridge", TABLE, name], "")[0] == 0:
            script.append(f"delete chain bridge {TABLE} {name}")
    if not script:
        return
    code, out, err = run(["-f", "-"], "\n".join(script) + "\n")
    if code != 0:
        raise CniError(Code.OTHER, "macspoofchk: nft teardown failed", (err or out).strip())

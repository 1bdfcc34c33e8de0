"""Looking into a pod's netns: its default route, and whether a link is there.

NPWG `default-route`: the cluster network's default route is removed and the
requested gateway installed on the selected interface. DEL asks whether an
interface is still there when a delegate failed. Done with `ip` run
inside the pod's netns through `nsenter`, so the binary's hot path stays
standard library only and pays nothing unless a pod asks for it.
"""

from __future__ import annotations

import os

from jaring.cni import inet, jsoncodec
from jaring.cni.errors import CniError, Code

TYPE_CHECKING = False
if TYPE_CHECKING:  # subprocess loads with the calls that run `ip`: most pods never need them
    import subprocess
    from collections.abc import Sequence
    from typing import Protocol
else:
    Protocol = object  # the classes below are only ever checked statically


class RouteEditor(Protocol):
    def set_default_routes(self, *, netns: str, ifname: str, gateways: Sequence[str]) -> None: ...


class NsenterRouteEditor:
    """Runs `ip route` in the pod's network namespace."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def _ip(self, netns: str, *args: str) -> subprocess.CompletedProcess[str]:
        import subprocess

        return subprocess.run(
            ["nsenter", f"--net={netns}", "ip", *args],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )

    def set_default_routes(self, *, netns: str, ifname: str, gateways: Sequence[str]) -> None:
        for gateway in gateways:
            family = "-6" if inet.address_version(gateway) == 6 else "-4"
            # Removing every default route of the family first: there is one
            # per family after the cluster network; a missing one is fine.
            while self._ip(netns, family, "route", "del", "default").returncode == 0:
                pass
            done = self._ip(
                netns, family, "route", "replace", "default", "via", gateway, "dev", ifname
            )
            if done.returncode != 0:
                raise CniError(
                    Code.OTHER,
                    f"cannot install default route via {gateway} on {ifname}",
                    done.stderr.strip(),
                )


class LinkProbe(Protocol):
    def exists(self, *, netns: str, ifname: str) -> bool: ...


class NsenterLinkProbe:
    """Is an interface still in the pod? Only asked when a delegate's DEL failed."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def exists(self, *, netns: str, ifname: str) -> bool:
        if not netns or not os.path.exists(netns):
            return False  # the namespace is gone, and every link in it
        import subprocess

        done = subprocess.run(
            ["nsenter", f"--net={netns}", "ip", "-j", "link", "show"],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if done.returncode != 0:
            return True  # cannot tell: assume it is there (never drop state blindly)
        try:
            links = jsoncodec.loads(done.stdout or "[]")
        except ValueError:
            return True
        return any(isinstance(i, dict) and i.get("ifname") == ifname for i in links)

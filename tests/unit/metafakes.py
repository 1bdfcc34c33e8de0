"""In-memory stand-ins for the meta-plugin's side effects: a pod/NAD source
and a delegate executor that records calls and keeps the 'links' it made."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jaring.cni.errors import CniError, Code
from jaring.cni.ids import NadName, Namespace, PodName, PodUID
from jaring.cni.invoke import Runtime
from jaring.metaplugin.sources import NadInfo, PodInfo


@dataclass
class FakeSource:
    pods: dict[tuple[str, str], PodInfo] = field(default_factory=dict)
    nads: dict[tuple[str, str], NadInfo] = field(default_factory=dict)
    statuses: dict[tuple[str, str], str] = field(default_factory=dict)
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    status_failures: int = 0

    def pod(
        self,
        namespace: str,
        name: str,
        *,
        uid: str = "uid-1",
        networks: str = "",
        **annotations: str,
    ) -> None:
        ann = dict(annotations)
        if networks:
            ann["k8s.v1.cni.cncf.io/networks"] = networks
        self.pods[(namespace, name)] = PodInfo(
            namespace=Namespace(namespace), name=PodName(name), uid=PodUID(uid), annotations=ann
        )

    def nad(self, namespace: str, name: str, config: Mapping[str, Any] | str | None) -> None:
        text = config if isinstance(config, str) else json.dumps(config) if config else ""
        self.nads[(namespace, name)] = NadInfo(
            namespace=Namespace(namespace), name=NadName(name), config=text, annotations={}
        )

    def get_pod(self, *, namespace: Namespace, name: PodName) -> PodInfo:
        try:
            return self.pods[(namespace, name)]
        except KeyError:
            raise CniError(Code.CONTAINER_UNKNOWN, "pod not found", f"{namespace}/{name}") from None

    def get_nad(self, *, namespace: Namespace, name: NadName) -> NadInfo | None:
        return self.nads.get((namespace, name))

    def write_status(self, *, namespace: Namespace, name: PodName, status: str) -> None:
        if self.status_failures:
            self.status_failures -= 1
            raise CniError(Code.TRY_AGAIN_LATER, "API unavailable")
        self.statuses[(namespace, name)] = status

    def post_event(
        self,
        *,
        namespace: Namespace,
        name: PodName,
        uid: PodUID,
        reason: str,
        message: str,
        warning: bool = False,
    ) -> None:
        self.events.append((reason, message, warning))


@dataclass
class FakeExecutor:
    """Delegates by CNI `name`: ADD makes a 'link' (network, ifname) with an IP."""

    links: dict[tuple[str, str, str], str] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    configs: list[dict[str, Any]] = field(default_factory=list)
    fail: set[tuple[str, str]] = field(default_factory=set)  # (command, network name)
    _ips: itertools.count = field(default_factory=lambda: itertools.count(2))

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None:
        conf = json.loads(stdin)
        if command == "VERSION":
            return {"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}
        name = conf["name"]
        self.calls.append((command, name, runtime.ifname))
        self.configs.append(conf)
        if (command, name) in self.fail:
            raise CniError(Code.OTHER, f"injected {command} failure", name)
        key = (runtime.container_id, name, runtime.ifname)
        if command == "ADD":
            address = f"10.{len(name) % 200}.0.{next(self._ips)}/24"
            self.links[key] = address
            return {
                "cniVersion": conf["cniVersion"],
                "interfaces": [
                    {"name": runtime.ifname, "mac": "02:00:00:00:00:01", "sandbox": runtime.netns}
                ],
                "ips": [
                    {
                        "address": address,
                        "gateway": address.split("/", maxsplit=1)[0].rsplit(".", 1)[0] + ".1",
                        "interface": 0,
                    }
                ],
                "routes": [{"dst": "0.0.0.0/0"}],
            }
        if command == "DEL":
            self.links.pop(key, None)
        if command == "CHECK" and key not in self.links:
            raise CniError(Code.OTHER, "link missing", runtime.ifname)
        return None


def bridge_conf(name: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": name, "type": "bridge", **extra}

"""`delegates.ipam`: host-local/static run in-process, other IPAM types are exec'd
from CNI_PATH with the link plugin's parameters, and both give the same result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.invoke import BinaryExecutor, Runtime
from jaring.cni.plugin import Request, parse_cni_args
from jaring.delegates import ipam

from .ipam_harness import REFERENCE_DIR, reference_available

needs_reference = pytest.mark.skipif(
    not reference_available("host-local"), reason="reference host-local not installed"
)


def link_conf(section: dict[str, Any], version: str = "1.0.0") -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": "net",
        "type": "macvlan",
        "master": "eth0",
        "ipam": section,
    }


def request(
    command: str, config: dict[str, Any], *, path: tuple[str, ...] = (), cid: str = "ctr"
) -> Request:
    return Request.build(
        command,
        json.dumps(config).encode(),
        container_id=cid,
        netns="/var/run/netns/none",
        ifname="net1",
        args=parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=p"),
        path=path,
    )


def host_local(data_dir: Path) -> dict[str, Any]:
    return {"type": "host-local", "subnet": "10.6.0.0/24", "dataDir": str(data_dir)}


def stored(data_dir: Path) -> dict[str, bytes]:
    net = data_dir / "net"
    return {p.name: p.read_bytes() for p in net.iterdir() if p.name[0].isdigit()}


def test_native_host_local_add_check_del(tmp_path: Path) -> None:
    section = host_local(tmp_path)
    conf = link_conf(section)
    result = ipam.ipam_add(request("ADD", conf), section)
    assert [ip.address for ip in result.ips] == ["10.6.0.2/24"]
    assert stored(tmp_path) == {"10.6.0.2": b"ctr\r\nnet1"}
    ipam.ipam_check(request("CHECK", conf), section)
    ipam.ipam_del(request("DEL", conf), section)
    assert stored(tmp_path) == {}
    ipam.ipam_del(request("DEL", conf), section)
    with pytest.raises(CniError, match="Failed to find address"):
        ipam.ipam_check(request("CHECK", conf), section)


def test_native_static(tmp_path: Path) -> None:
    section = {"type": "static", "addresses": [{"address": "10.7.0.5/24", "gateway": "10.7.0.1"}]}
    result = ipam.ipam_add(request("ADD", link_conf(section)), section)
    assert [(ip.address, ip.gateway) for ip in result.ips] == [("10.7.0.5/24", "10.7.0.1")]
    ipam.ipam_del(request("DEL", link_conf(section)), section)


def test_native_gc_and_status(tmp_path: Path) -> None:
    section = host_local(tmp_path)
    conf = link_conf(section, "1.1.0")
    ipam.ipam_add(request("ADD", conf), section)
    ipam.ipam_status(request("STATUS", conf, cid=""), section)
    ipam.ipam_gc(request("GC", {**conf, "cni.dev/valid-attachments": []}, cid=""), section)
    assert stored(tmp_path) == {}


def test_a_section_other_than_the_configs_is_what_the_plugin_sees(tmp_path: Path) -> None:
    """A link plugin may hand IPAM a changed section (sriov fills it from runtimeConfig)."""
    conf = link_conf(host_local(tmp_path / "written"))
    changed = host_local(tmp_path / "given")
    ipam.ipam_add(request("ADD", conf), changed)
    assert stored(tmp_path / "given") == {"10.6.0.2": b"ctr\r\nnet1"}
    assert not (tmp_path / "written").exists()


@needs_reference
def test_other_types_are_execd_from_cni_path_with_the_same_result(tmp_path: Path) -> None:
    plugins = tmp_path / "bin"
    plugins.mkdir()
    os.symlink(REFERENCE_DIR / "host-local", plugins / "other-ipam")
    execd = {**host_local(tmp_path / "execd"), "type": "other-ipam"}
    native = host_local(tmp_path / "native")
    path = ("/nonexistent", str(plugins))
    for cid in ("ctr-1", "ctr-2"):
        got = ipam.ipam_add(request("ADD", link_conf(execd), path=path, cid=cid), execd)
        want = ipam.ipam_add(request("ADD", link_conf(native), cid=cid), native)
        assert got.to_json() == want.to_json()
    assert stored(tmp_path / "execd") == stored(tmp_path / "native")
    ipam.ipam_check(request("CHECK", link_conf(execd), path=path, cid="ctr-1"), execd)
    ipam.ipam_del(request("DEL", link_conf(execd), path=path, cid="ctr-1"), execd)
    assert list(stored(tmp_path / "execd")) == ["10.6.0.3"]
    with pytest.raises(CniError) as err:
        ipam.ipam_check(request("CHECK", link_conf(execd), path=path, cid="ctr-1"), execd)
    assert "Failed to find address added by container ctr-1" in err.value.msg


@needs_reference
def test_an_executor_forces_exec_even_for_native_types(tmp_path: Path) -> None:
    section = host_local(tmp_path)
    calls: list[tuple[str, str, Runtime]] = []
    binary = BinaryExecutor()

    def executor(command: str, plugin_type: str, stdin: bytes, runtime: Runtime) -> Any:
        calls.append((command, plugin_type, runtime))
        return binary(command, plugin_type, stdin, runtime)

    req = request("ADD", link_conf(section), path=(str(REFERENCE_DIR),))
    result = ipam.ipam_add(req, section, executor=executor)
    assert [ip.address for ip in result.ips] == ["10.6.0.2/24"]
    assert [(c, t) for c, t, _ in calls] == [("ADD", "host-local")]
    runtime = calls[0][2]
    assert (runtime.container_id, runtime.ifname, runtime.netns) == (
        "ctr",
        "net1",
        "/var/run/netns/none",
    )
    assert runtime.args == (("IgnoreUnknown", "1"), ("K8S_POD_NAME", "p"))


def test_missing_type_is_invalid_config(tmp_path: Path) -> None:
    with pytest.raises(CniError) as err:
        ipam.ipam_add(request("ADD", link_conf({"subnet": "10.0.0.0/24"})), {"subnet": "x"})
    assert err.value.code == Code.INVALID_CONFIG


def test_unknown_type_not_on_path_is_an_error(tmp_path: Path) -> None:
    section = {"type": "no-such-ipam"}
    with pytest.raises(CniError, match="failed to find plugin"):
        ipam.ipam_add(request("ADD", link_conf(section), path=(str(tmp_path),)), section)


def test_a_native_plugin_bug_becomes_a_cni_error(tmp_path: Path) -> None:
    class Broken:
        supported_versions = ("1.0.0",)

        def add(self, req: Request) -> Any:
            raise KeyError("boom")

    section = {"type": "host-local"}
    with pytest.raises(CniError) as err:
        ipam.ipam_add(request("ADD", link_conf(section)), section, loader=lambda _: Broken())
    assert err.value.code == Code.OTHER
    assert "KeyError" in err.value.details


def test_the_registry_finds_the_same_plugins_the_meta_plugin_runs() -> None:
    from jaring.cni import registry
    from jaring.delegates import hostlocal, static

    assert registry.load("host-local") is hostlocal.PLUGIN is ipam.native_ipam("host-local")
    assert registry.load("static") is static.PLUGIN is ipam.native_ipam("static")
    assert ipam.native_ipam("dhcp") is None

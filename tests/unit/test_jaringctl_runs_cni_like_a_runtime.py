"""`jaringctl up/down/check/gc` call the jaring binary exactly as a container
runtime does: CNI env, CNI_ARGS with the pod's identity, the meta config on
stdin, the same parameters for DEL and CHECK as for ADD (issue 3; CNI SPEC
"Parameters"). A recording stand-in replaces the binary, `ip` is faked."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from jaring.cni.errors import CniError
from jaring.metaplugin.ctl_runtime import Runtime
from jaring.metaplugin.ctl_store import Store, validate
from jaring.metaplugin.localnet import Host

RECORDER = """\
#!{python}
import json, os, sys
calls = os.environ["RECORD_TO"]
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
stdin = json.loads(sys.stdin.read())
with open(calls, "a") as f:
    f.write(json.dumps({{"env": env, "stdin": stdin}}) + "\\n")
fail = os.environ.get("FAIL_ON")
if fail == env["CNI_COMMAND"]:
    print(json.dumps({{"cniVersion": "1.0.0", "code": 7, "msg": "no such network",
                      "details": "ns/blue"}}))
    sys.exit(1)
if env["CNI_COMMAND"] == "ADD":
    print(json.dumps({{"cniVersion": "1.0.0", "interfaces": [], "ips": []}}))
"""


def _fake_ip(netns_dir: Path) -> Callable[[Sequence[str]], subprocess.CompletedProcess[str]]:
    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(argv)
        if args[1:3] == ["netns", "add"]:
            (netns_dir / args[3]).touch()
        elif args[1:3] == ["netns", "delete"]:
            (netns_dir / args[3]).unlink()
        return subprocess.CompletedProcess(args, 0, "", "")

    return run


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    binary = tmp_path / "jaring"
    binary.write_text(RECORDER.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("RECORD_TO", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("CNI_COMMAND", "stale value a runtime would never pass on")
    for folder in ("netns", "net", "sys/net/ipv4"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "sys/net/ipv4/ip_forward").write_text("1\n")
    host = Host(
        run=_fake_ip(tmp_path / "netns"),
        netns_dir=tmp_path / "netns",
        sys_net=tmp_path / "net",
        proc_sys=tmp_path / "sys",
    )
    rt = Runtime(tmp_path / "store", host=host, binary=str(binary), out=lambda _: None)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-1"},
    }
    Store(rt.root).write(validate(pod, origin="test"))
    return rt


def _calls(tmp_path: Path) -> list[dict[str, dict[str, object]]]:
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_up_runs_add_with_the_runtime_env_and_the_meta_config(
    runtime: Runtime, tmp_path: Path
) -> None:
    rec = runtime.up(namespace="team", name="web")
    (call,) = _calls(tmp_path)
    root = runtime.root
    assert call["env"] == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": rec.container_id,
        "CNI_NETNS": str(tmp_path / "netns" / rec.netns),
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=team;K8S_POD_NAME=web;"
        f"K8S_POD_INFRA_CONTAINER_ID={rec.container_id};K8S_POD_UID=uid-1",
        "CNI_PATH": "/usr/lib/cni:/opt/cni/bin",
    }
    assert call["stdin"] == {
        "cniVersion": "1.0.0",
        "name": "jaring",
        "type": "jaring",
        "manifestDir": str(root),
        "cniDir": str(root / ".jaring" / "cache"),
        "confDir": str(root / ".jaring" / "net.d"),
        "clusterNetwork": str(root / ".jaring" / "cluster.conflist"),
        "logFile": str(root / ".jaring" / "jaring.log"),
        "daemonSocket": "",
    }
    cluster = json.loads((root / ".jaring" / "cluster.conflist").read_text())
    (bridge,) = cluster["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "jaring0"
    assert bridge["isGateway"] is True and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.89.0.0/24"}]]
    assert bridge["ipam"]["dataDir"] == str(root / ".jaring" / "ipam")
    assert rec.state == "up" and len(rec.container_id) == 64


def test_check_and_down_send_exactly_what_add_got(runtime: Runtime, tmp_path: Path) -> None:
    runtime.up(namespace="team", name="web")
    runtime.check(namespace="team", name="web")
    assert runtime.down(namespace="team", name="web") is True
    add, check, delete = _calls(tmp_path)
    assert check["env"] == {**add["env"], "CNI_COMMAND": "CHECK"}
    assert delete["env"] == {**add["env"], "CNI_COMMAND": "DEL"}
    assert add["stdin"] == check["stdin"] == delete["stdin"]
    assert os.listdir(tmp_path / "netns") == []
    assert runtime.down(namespace="team", name="web") is False


def test_a_failed_add_is_one_error_and_removes_the_netns(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_ON", "ADD")
    with pytest.raises(CniError) as caught:
        runtime.up(namespace="team", name="web")
    assert str(caught.value).startswith("up team/web: CNI ADD failed: no such network: ns/blue")
    assert [c["env"]["CNI_COMMAND"] for c in _calls(tmp_path)] == ["ADD", "DEL"]
    assert os.listdir(tmp_path / "netns") == []
    assert runtime.record(namespace="team", name="web") is None


def test_gc_passes_the_pods_that_are_up_as_valid_attachments(
    runtime: Runtime, tmp_path: Path
) -> None:
    rec = runtime.up(namespace="team", name="web")
    runtime.gc()
    call = _calls(tmp_path)[-1]
    assert call["env"] == {"CNI_COMMAND": "GC", "CNI_PATH": "/usr/lib/cni:/opt/cni/bin"}
    stdin = call["stdin"]
    assert stdin["cniVersion"] == "1.1.0"
    assert stdin["cni.dev/valid-attachments"] == [
        {"containerID": rec.container_id, "ifname": "eth0"}
    ]


def test_the_cluster_subnet_is_configurable(runtime: Runtime) -> None:
    runtime.up(namespace="team", name="web", subnet="10.55.0.0/16", bridge="lab0")
    cluster = json.loads((runtime.root / ".jaring" / "cluster.conflist").read_text())
    assert cluster["plugins"][0]["bridge"] == "lab0"
    assert cluster["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.55.0.0/16"}]]


@pytest.mark.parametrize(
    ("subnet", "bridge", "message"),
    [
        ("10.55.0.1/16", None, "has host bits set"),
        ("nonsense", None, "does not appear to be an IPv4 or IPv6 network"),
        (None, "a-bridge-name-too-long", "not a valid interface name"),
    ],
)
def test_a_bad_cluster_setting_is_refused_before_anything_is_made(
    runtime: Runtime, tmp_path: Path, subnet: str | None, bridge: str | None, message: str
) -> None:
    with pytest.raises(CniError, match=message):
        runtime.up(namespace="team", name="web", subnet=subnet, bridge=bridge)
    assert not (tmp_path / "calls.jsonl").exists()
    assert os.listdir(tmp_path / "netns") == []

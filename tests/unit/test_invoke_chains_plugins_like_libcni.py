"""`jaring.cni.invoke` and `netconf`: chaining, capabilities, exec of binaries.

SPECS.md CNI "Chaining": name/cniVersion injected, prevResult on ADD, DEL in
reverse with the cached result (0.4.0+), CHECK in order, runtimeConfig only
for declared capabilities and `capabilities` itself not passed; a `type`
must be a plain file name.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from jaring.cni import invoke
from jaring.cni.errors import CniError, Code
from jaring.cni.invoke import Runtime
from jaring.cni.netconf import NetworkConfig
from jaring.cni.types import Result

RT = Runtime(container_id="c1", netns="/var/run/netns/x", ifname="net1", path=("/x",))


class Chain:
    """Executor recording (command, type, stdin doc); ADD appends an IP per plugin."""

    def __init__(
        self, fail: set[tuple[str, str]] | None = None, old: frozenset[str] = frozenset()
    ) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = fail or set()
        self.old = old  # types that do not speak 1.1.0

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None:
        doc = json.loads(stdin)
        if command == "VERSION":
            speaks = ["1.0.0"] if plugin_type in self.old else ["1.0.0", "1.1.0"]
            return {"cniVersion": "1.0.0", "supportedVersions": speaks}
        self.calls.append((command, plugin_type, doc))
        if (command, plugin_type) in self.fail:
            raise CniError(Code.OTHER, f"{plugin_type} failed")
        if command != "ADD":
            return None
        prev = doc.get("prevResult") or {"cniVersion": doc["cniVersion"]}
        ips = [*prev.get("ips", []), {"address": f"10.0.{len(self.calls)}.2/24"}]
        return {**prev, "cniVersion": doc["cniVersion"], "ips": ips}


def conflist(version: str = "1.0.0") -> NetworkConfig:
    return NetworkConfig.parse(
        {
            "cniVersion": version,
            "name": "data",
            "plugins": [
                {"type": "bridge", "capabilities": {"mac": True}, "bridge": "br9"},
                {"type": "tuning", "capabilities": {"ips": True, "bandwidth": False}},
            ],
        }
    )


def test_add_injects_name_and_version_and_chains_prev_result() -> None:
    ex = Chain()
    result = invoke.add_network(conflist(), RT, ex, runtime_config={})
    assert [c[1] for c in ex.calls] == ["bridge", "tuning"]
    first, second = ex.calls[0][2], ex.calls[1][2]
    assert (first["name"], first["cniVersion"]) == ("data", "1.0.0")
    assert "prevResult" not in first
    assert second["prevResult"]["ips"] == [{"address": "10.0.1.2/24"}]
    assert [ip.address for ip in result.ips] == ["10.0.1.2/24", "10.0.2.2/24"]


def test_runtime_config_reaches_only_plugins_declaring_the_capability() -> None:
    ex = Chain()
    rc = {"mac": "02:00:00:00:00:09", "ips": ["10.9.0.9/24"], "bandwidth": {"x": 1}, "other": 1}
    invoke.add_network(conflist(), RT, ex, runtime_config=rc)
    first, second = ex.calls[0][2], ex.calls[1][2]
    assert first["runtimeConfig"] == {"mac": "02:00:00:00:00:09"}
    assert second["runtimeConfig"] == {"ips": ["10.9.0.9/24"]}
    assert "capabilities" not in first and "capabilities" not in second
    assert first["bridge"] == "br9"  # unknown keys pass through untouched


def test_del_runs_in_reverse_with_the_cached_result_and_tries_every_plugin() -> None:
    ex = Chain(fail={("DEL", "tuning")})
    prev = Result.from_json({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]})
    with pytest.raises(CniError, match="tuning failed"):
        invoke.del_network(conflist(), RT, ex, prev_result=prev)
    assert [c[1] for c in ex.calls] == ["tuning", "bridge"]
    assert all(c[2]["prevResult"]["ips"][0]["address"] == "10.0.0.2/24" for c in ex.calls)


def test_del_before_0_4_0_carries_no_prev_result() -> None:
    ex = Chain()
    prev = Result.from_json({"cniVersion": "0.3.1", "ips": [{"address": "10.0.0.2/24"}]})
    invoke.del_network(conflist("0.3.1"), RT, ex, prev_result=prev)
    assert all("prevResult" not in c[2] for c in ex.calls)


def test_check_runs_in_order_with_the_result_in_the_networks_version() -> None:
    ex = Chain()
    prev = Result.from_json({"cniVersion": "1.1.0", "ips": [{"address": "10.0.0.2/24"}]})
    invoke.check_network(conflist("0.4.0"), RT, ex, prev_result=prev)
    assert [c[1] for c in ex.calls] == ["bridge", "tuning"]
    assert ex.calls[0][2]["prevResult"]["cniVersion"] == "0.4.0"
    assert ex.calls[0][2]["prevResult"]["ips"][0]["version"] == "4"


def test_gc_and_status_skip_networks_older_than_1_1_0() -> None:
    ex = Chain()
    invoke.gc_network(conflist("1.0.0"), ex, path=["/x"], valid_attachments=[])
    invoke.status_network(conflist("1.0.0"), ex, path=["/x"])
    assert ex.calls == []
    valid = [{"containerID": "c1", "ifname": "net1"}]
    invoke.gc_network(conflist("1.1.0"), ex, path=["/x"], valid_attachments=valid)
    assert [c[2]["cni.dev/valid-attachments"] for c in ex.calls] == [valid, valid]


def test_gc_and_status_skip_plugins_that_do_not_speak_1_1_0() -> None:
    ex = Chain(old=frozenset({"bridge"}))
    invoke.gc_network(conflist("1.1.0"), ex, path=["/x"], valid_attachments=[])
    invoke.status_network(conflist("1.1.0"), ex, path=["/x"])
    assert [(c[0], c[1]) for c in ex.calls] == [("GC", "tuning"), ("STATUS", "tuning")]


@pytest.mark.parametrize("bad", ["../bridge", "/usr/lib/cni/bridge", "a/b", "..", ""])
def test_a_type_that_is_not_a_plain_file_name_is_refused(bad: str) -> None:
    with pytest.raises(CniError) as info:
        NetworkConfig.parse({"cniVersion": "1.0.0", "name": "n", "type": bad})
    assert info.value.code == Code.INVALID_CONFIG


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ("{", Code.DECODE),
        ("[]", Code.DECODE),
        ('{"cniVersion":"1.0.0","type":"bridge"}', Code.INVALID_CONFIG),
        ('{"name":"n","type":"bridge"}', Code.INVALID_CONFIG),
        ('{"cniVersion":"0.2.0","name":"n","type":"bridge"}', Code.INCOMPATIBLE_VERSION),
        ('{"cniVersion":"1.0.0","name":"n","plugins":[]}', Code.INVALID_CONFIG),
        ('{"cniVersion":"1.0.0","name":"n","plugins":[1]}', Code.INVALID_CONFIG),
        ('{"cniVersion":"1.0.0","name":"n","plugins":[{}]}', Code.INVALID_CONFIG),
        ('{"cniVersion":"1.0.0","name":"n","disableGC":"yes","plugins":[{"type":"x"}]}', 7),
    ],
)
def test_bad_network_configs_are_clear_cni_errors(doc: str, code: int) -> None:
    with pytest.raises(CniError) as info:
        NetworkConfig.parse(doc)
    assert info.value.code == code


def test_a_nameless_config_takes_the_default_name() -> None:
    net = NetworkConfig.parse('{"cniVersion":"1.0.0","type":"macvlan"}', default_name="nad1")
    assert net.name == "nad1"
    assert net.to_json()["name"] == "nad1"


def test_cni_args_land_in_every_plugins_args_cni() -> None:
    net = conflist().with_cni_args({"k": "v"})
    assert [p["args"]["cni"] for p in net.plugins] == [{"k": "v"}, {"k": "v"}]
    assert [p["args"]["cni"] for p in net.to_json()["plugins"]] == [{"k": "v"}, {"k": "v"}]


def _script(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_binary_executor_passes_the_cni_environment_and_reads_the_result(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "echoer",
        'cat > "$0.stdin"\n'
        'printf \'{"cniVersion":"1.0.0","ips":[{"address":"10.1.1.1/24"}],'
        '"dns":{"domain":"%s %s %s %s %s"}}\' '
        '"$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH"\n',
    )
    rt = Runtime("c9", "/var/run/netns/n", "net3", (("A", "1"), ("B", "2")), (str(tmp_path),))
    out = invoke.BinaryExecutor()("ADD", "echoer", b'{"x":1}', rt)
    assert out is not None
    assert out["dns"]["domain"] == f"ADD c9 net3 A=1;B=2 {tmp_path}"
    assert (tmp_path / "echoer.stdin").read_bytes() == b'{"x":1}'


def test_binary_executor_turns_a_plugin_error_into_a_cni_error(tmp_path: Path) -> None:
    _script(tmp_path, "failer", 'echo \'{"code":11,"msg":"busy","details":"d"}\'; exit 1\n')
    _script(tmp_path, "crasher", "echo oops >&2; exit 2\n")
    rt = Runtime(path=(str(tmp_path),))
    with pytest.raises(CniError) as info:
        invoke.BinaryExecutor()("DEL", "failer", b"{}", rt)
    assert (info.value.code, info.value.msg, info.value.details) == (11, "busy", "d")
    with pytest.raises(CniError) as info:
        invoke.BinaryExecutor()("DEL", "crasher", b"{}", rt)
    assert info.value.code == Code.OTHER and "oops" in info.value.details


def test_a_plugin_missing_from_cni_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(CniError, match="nosuch"):
        invoke.BinaryExecutor()("ADD", "nosuch", b"{}", Runtime(path=(str(tmp_path),)))


def test_a_plugin_past_its_timeout_is_killed_and_reported_as_try_again(tmp_path: Path) -> None:
    _script(tmp_path, "sleeper", "exec sleep 30\n")
    _script(tmp_path, "noexec", "")
    (tmp_path / "noexec").write_bytes(b"\x7fELF not really")
    rt = Runtime(path=(str(tmp_path),))
    with pytest.raises(CniError) as info:
        invoke.BinaryExecutor(timeout=0.3)("ADD", "sleeper", b"{}", rt)
    assert info.value.code == Code.TRY_AGAIN_LATER and "timed out" in info.value.msg
    with pytest.raises(CniError) as info:
        invoke.BinaryExecutor()("ADD", "noexec", b"{}", rt)
    assert info.value.code == Code.IO and "cannot execute" in info.value.msg

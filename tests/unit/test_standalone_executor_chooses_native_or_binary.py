"""Issue 4: the `jaring` binary runs a native delegate for a type unless its
config says to exec the binary; standalone, a binary on CNI_PATH wins (an exec
is cheaper than the Python delegate's imports) unless `nativeTypes` names it."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.invoke import Runtime
from jaring.metaplugin.meta import StandaloneExecutor

# An IPAM plugin gets the whole network config, its own part under "ipam".
STATIC = json.dumps(
    {
        "cniVersion": "1.0.0",
        "name": "n",
        "type": "static",
        "ipam": {"type": "static", "addresses": [{"address": "10.9.0.2/24"}]},
    }
).encode()


class Binary:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None:
        self.calls.append(plugin_type)
        return {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.99/24"}]}


def _path(tmp_path: Path, *, with_binary: bool) -> tuple[str, ...]:
    if with_binary:
        exe = tmp_path / "static"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return (str(tmp_path),)


@pytest.mark.parametrize(
    ("with_binary", "exec_types", "native_types", "execd"),
    [
        (False, set(), set(), False),  # no binary: the native delegate
        (True, set(), set(), True),  # a binary on CNI_PATH wins standalone
        (True, set(), {"static"}, False),  # unless nativeTypes names the type
        (False, {"static"}, set(), True),  # execTypes: always the binary
        (True, {"static"}, {"static"}, True),  # execTypes wins over nativeTypes
    ],
)
def test_routing(
    tmp_path: Path, with_binary: bool, exec_types: set[str], native_types: set[str], execd: bool
) -> None:
    binary = Binary()
    executor = StandaloneExecutor(
        exec_types=frozenset(exec_types), native_types=frozenset(native_types), binary=binary
    )
    runtime = Runtime("c1", "", "net1", (), _path(tmp_path, with_binary=with_binary))
    out = executor("ADD", "static", STATIC, runtime)
    assert out is not None
    assert binary.calls == (["static"] if execd else [])
    assert out["ips"][0]["address"] == ("10.0.0.99/24" if execd else "10.9.0.2/24")


def test_a_type_without_a_native_plugin_is_always_execd(tmp_path: Path) -> None:
    binary = Binary()
    runtime = Runtime("c1", "", "net1", (), (str(tmp_path),))
    StandaloneExecutor(binary=binary)("ADD", "tuning", b'{"cniVersion":"1.0.0"}', runtime)
    assert binary.calls == ["tuning"]

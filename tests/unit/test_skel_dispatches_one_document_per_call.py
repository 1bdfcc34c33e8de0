"""`jaring.cni.skel`: env table, version gates, VERSION, errors as spec JSON.

SPECS.md CNI: parameters from env, exactly one JSON document on stdout,
errors {cniVersion, code, msg, details}, CHECK from 0.4.0, STATUS/GC from 1.1.0,
anything unexpected is code 999.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jaring.cni import skel, version
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.cni.types import Interface, IPConfig, Result

FULL_ENV = {
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/var/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p",
}


class Recorder:
    supported_versions = version.SUPPORTED

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, Request]] = []
        self.fail = fail

    def _note(self, name: str, req: Request) -> None:
        self.calls.append((name, req))
        if self.fail is not None:
            raise self.fail

    def add(self, req: Request) -> Result:
        self._note("add", req)
        return Result(
            cni_version="1.1.0",
            interfaces=(Interface("eth0", mac="02:00:00:00:00:01", sandbox=req.netns, mtu=1400),),
            ips=(IPConfig("10.0.0.5/24", "10.0.0.1", 0),),
        )

    def delete(self, req: Request) -> None:
        self._note("delete", req)

    def check(self, req: Request) -> None:
        self._note("check", req)

    def status(self, req: Request) -> None:
        self._note("status", req)

    def gc(self, req: Request) -> None:
        self._note("gc", req)


def conf(v: str = "1.0.0", **extra: Any) -> bytes:
    return json.dumps({"cniVersion": v, "name": "n", "type": "t", **extra}).encode()


def call(plugin: Recorder, command: str, stdin: bytes, **env: str) -> tuple[int, Any]:
    code, out = skel.run(plugin, environ={**FULL_ENV, "CNI_COMMAND": command, **env}, stdin=stdin)
    assert out.count(b"\n") <= 1  # exactly one document
    return code, json.loads(out) if out else None


@pytest.mark.parametrize("v", version.SUPPORTED)
def test_add_prints_the_result_in_the_configs_version(v: str) -> None:
    plugin = Recorder()
    code, doc = call(plugin, "ADD", conf(v))
    assert code == 0
    assert doc["cniVersion"] == v
    assert ("version" in doc["ips"][0]) == (not version.at_least(v, "1.0.0"))
    assert ("mtu" in doc["interfaces"][0]) == (v == "1.1.0")
    req = plugin.calls[0][1]
    assert (req.container_id, req.netns, req.ifname) == ("c1", "/var/run/netns/x", "eth0")
    assert req.path == ("/opt/cni/bin", "/usr/lib/cni")
    assert req.arg("K8S_POD_NAME") == "p"


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("ADD", "CNI_CONTAINERID"),
        ("ADD", "CNI_NETNS"),
        ("ADD", "CNI_IFNAME"),
        ("ADD", "CNI_PATH"),
        ("DEL", "CNI_CONTAINERID"),
        ("DEL", "CNI_IFNAME"),
        ("CHECK", "CNI_NETNS"),
        ("GC", "CNI_PATH"),
    ],
)
def test_a_missing_required_variable_is_error_4_naming_it(command: str, missing: str) -> None:
    plugin = Recorder()
    code, doc = call(plugin, command, conf("1.1.0"), **{missing: ""})
    assert code == 1
    assert doc["code"] == Code.INVALID_ENV
    assert missing in doc["details"]
    assert plugin.calls == []


def test_del_does_not_need_a_netns() -> None:
    plugin = Recorder()
    code, _ = call(plugin, "DEL", conf(), CNI_NETNS="")
    assert code == 0
    assert plugin.calls[0][0] == "delete"


@pytest.mark.parametrize(
    ("command", "v"), [("CHECK", "0.3.1"), ("STATUS", "1.0.0"), ("GC", "1.0.0")]
)
def test_verbs_newer_than_the_configs_version_are_refused_with_code_1(command: str, v: str) -> None:
    plugin = Recorder()
    code, doc = call(plugin, command, conf(v))
    assert (code, doc["code"]) == (1, Code.INCOMPATIBLE_VERSION)
    assert command in doc["msg"]
    assert plugin.calls == []


@pytest.mark.parametrize("v", ["0.1.0", "0.2.0", "2.0.0"])
def test_an_unsupported_version_is_error_1_with_a_clear_message(v: str) -> None:
    code, doc = call(Recorder(), "ADD", conf(v))
    assert (code, doc["code"]) == (1, Code.INCOMPATIBLE_VERSION)
    assert v in doc["details"] and "1.1.0" in doc["details"]


def test_version_lists_every_supported_version() -> None:
    code, doc = call(Recorder(), "VERSION", b'{"cniVersion":"0.4.0"}')
    assert code == 0
    assert doc == {"cniVersion": "0.4.0", "supportedVersions": list(version.SUPPORTED)}


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [(b"{not json", Code.DECODE), (b"[1,2]", Code.DECODE), (b'{"name":"n"}', Code.INVALID_CONFIG)],
)
def test_bad_stdin_is_a_spec_error(stdin: bytes, expected: int) -> None:
    code, doc = call(Recorder(), "ADD", stdin)
    assert (code, doc["code"]) == (1, expected)
    assert doc["msg"]


def test_bad_cni_args_is_error_4() -> None:
    code, doc = call(Recorder(), "ADD", conf(), CNI_ARGS="novalue")
    assert (code, doc["code"]) == (1, Code.INVALID_ENV)


def test_unknown_command_is_error_4() -> None:
    code, doc = call(Recorder(), "FROB", conf())
    assert (code, doc["code"]) == (1, Code.INVALID_ENV)


def test_a_plugin_error_is_printed_with_code_msg_details_in_the_configs_version() -> None:
    plugin = Recorder(fail=CniError(Code.TRY_AGAIN_LATER, "busy", "lock held"))
    code, doc = call(plugin, "DEL", conf("0.4.0"))
    assert code == 1
    assert doc == {"cniVersion": "0.4.0", "code": 11, "msg": "busy", "details": "lock held"}


def test_an_unexpected_exception_is_code_999_without_a_traceback() -> None:
    plugin = Recorder(fail=KeyError("boom"))
    code, out = skel.run(plugin, environ={**FULL_ENV, "CNI_COMMAND": "ADD"}, stdin=conf())
    assert code == 1
    doc = json.loads(out)
    assert doc["code"] == 999
    assert "Traceback" not in out.decode()

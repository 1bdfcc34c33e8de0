"""Native host-local beyond what the reference 1.1.1 can show: GC, STATUS, the store's
exact bytes and modes, crash leftovers, rollback of only its own addresses, error codes.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from jaring.cni import skel
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request, parse_cni_args
from jaring.cni.types import Result
from jaring.delegates.hostlocal import PLUGIN, HostLocal
from jaring.delegates.ipstore import Store


def conf(data_dir: Path | None, version: str = "1.1.0", **ipam: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"type": "host-local", "subnet": "10.5.0.0/24", **ipam}
    if data_dir is not None:
        section["dataDir"] = str(data_dir)
    return {"cniVersion": version, "name": "net", "ipam": section}


def request(
    command: str, config: dict[str, Any], cid: str = "ctr", ifname: str = "eth0", args: str = ""
) -> Request:
    return Request.build(
        command,
        json.dumps(config).encode(),
        container_id=cid,
        ifname=ifname,
        args=parse_cni_args(args),
    )


def addresses(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in store.iterdir() if p.name[0].isdigit()}


def test_store_files_have_the_reference_bytes_and_modes(tmp_path: Path) -> None:
    result = PLUGIN.add(request("ADD", conf(tmp_path), cid=" ctr-1 "))
    assert isinstance(result, Result)
    assert [ip.address for ip in result.ips] == ["10.5.0.2/24"]
    store = tmp_path / "net"
    assert (store / "10.5.0.2").read_bytes() == b"ctr-1\r\neth0"
    assert (store / "last_reserved_ip.0").read_bytes() == b"10.5.0.2"
    assert stat.S_IMODE((store / "10.5.0.2").stat().st_mode) == 0o644
    assert stat.S_IMODE((store / "lock").stat().st_mode) == 0o750
    assert sorted(p.name for p in store.iterdir()) == ["10.5.0.2", "last_reserved_ip.0", "lock"]


def test_last_reserved_ip_is_rewritten_in_place_without_a_stale_tail(tmp_path: Path) -> None:
    # A longer address, then a shorter one: the file holds exactly the new one
    # (the reference reads it whole, without trimming), in the same file.
    config = conf(tmp_path, rangeStart="10.5.0.100")
    PLUGIN.add(request("ADD", config, cid="a"))
    last = tmp_path / "net" / "last_reserved_ip.0"
    assert last.read_bytes() == b"10.5.0.100"
    inode = last.stat().st_ino
    narrow = conf(tmp_path, rangeStart="10.5.0.9", rangeEnd="10.5.0.9")
    PLUGIN.add(request("ADD", narrow, cid="b"))
    assert last.read_bytes() == b"10.5.0.9"
    assert last.stat().st_ino == inode
    assert stat.S_IMODE(last.stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "net").iterdir()) == [
        "10.5.0.100",
        "10.5.0.9",
        "last_reserved_ip.0",
        "lock",
    ]


def test_default_data_dir_is_used_without_data_dir(tmp_path: Path) -> None:
    plugin = HostLocal(default_data_dir=str(tmp_path / "networks"))
    plugin.add(request("ADD", conf(None)))
    assert (tmp_path / "networks" / "net" / "10.5.0.2").exists()


def test_garbage_last_reserved_ip_starts_over_at_range_start(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "last_reserved_ip.0").write_text("10.5.0.9\n")  # Go's ParseIP fails on \n
    result = PLUGIN.add(request("ADD", conf(tmp_path)))
    assert result.ips[0].address == "10.5.0.2/24"


def test_failed_add_keeps_an_earlier_allocation_of_the_same_attachment(tmp_path: Path) -> None:
    """The reference releases every address of the attachment on rollback,
    including one an earlier, successful ADD made; jaring undoes only its own."""
    dual = conf(tmp_path, ranges=[[{"subnet": "2001:db8:5::/64"}]])
    PLUGIN.add(request("ADD", dual, cid="ctr-a"))
    before = addresses(tmp_path / "net")
    blocked = conf(tmp_path, ranges=[[{"subnet": "2001:db8:5::/64"}]])
    blocked["runtimeConfig"] = {"ips": ["10.5.0.77", "10.5.0.2"]}  # .2 is taken by ctr-a
    with pytest.raises(CniError, match="failed to allocate"):
        PLUGIN.add(request("ADD", blocked, cid="ctr-a"))
    assert addresses(tmp_path / "net") == before


def test_failed_second_range_releases_the_first(tmp_path: Path) -> None:
    c = conf(tmp_path, ranges=[[{"subnet": "2001:db8:5::/126"}]])
    PLUGIN.add(request("ADD", c, cid="ctr-a"))
    PLUGIN.add(request("ADD", c, cid="ctr-b"))
    before = addresses(tmp_path / "net")
    with pytest.raises(CniError, match="failed to allocate for range 1: no IP addresses"):
        PLUGIN.add(request("ADD", c, cid="ctr-c"))
    assert addresses(tmp_path / "net") == before


def gc_conf(tmp_path: Path, attachments: list[dict[str, str]], key: str) -> dict[str, Any]:
    return {**conf(tmp_path), key: attachments}


@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_gc_releases_what_is_not_a_valid_attachment(tmp_path: Path, key: str) -> None:
    for cid, ifname in (("keep", "eth0"), ("keep", "net1"), ("drop", "eth0")):
        PLUGIN.add(request("ADD", conf(tmp_path), cid=cid, ifname=ifname))
    store = tmp_path / "net"
    (store / "10.5.0.50").write_text("keep")  # pre-ifname format, container still valid
    (store / "10.5.0.51").write_text("old-drop")
    (store / ".jaring-4242.tmp").write_text("crash leftover")
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    PLUGIN.gc(request("GC", gc_conf(tmp_path, valid, key), cid="", ifname=""))
    assert addresses(store) == {"10.5.0.2": b"keep\r\neth0", "10.5.0.50": b"keep"}
    assert not (store / ".jaring-4242.tmp").exists()


def test_gc_needs_the_valid_attachments_key(tmp_path: Path) -> None:
    PLUGIN.add(request("ADD", conf(tmp_path)))
    with pytest.raises(CniError) as err:
        PLUGIN.gc(request("GC", conf(tmp_path), cid="", ifname=""))
    assert err.value.code == Code.INVALID_CONFIG
    assert addresses(tmp_path / "net")


def test_gc_with_an_empty_list_releases_everything_even_with_changed_ranges(tmp_path: Path) -> None:
    PLUGIN.add(request("ADD", conf(tmp_path)))
    changed = conf(tmp_path, subnet="not-a-subnet")
    PLUGIN.gc(request("GC", {**changed, "cni.dev/valid-attachments": []}, cid="", ifname=""))
    assert addresses(tmp_path / "net") == {}


def test_gc_and_status_through_the_executable_dispatch(tmp_path: Path) -> None:
    env = {"CNI_COMMAND": "STATUS", "CNI_PATH": "/nonexistent"}
    code, out = skel.run(PLUGIN, environ=env, stdin=json.dumps(conf(tmp_path)).encode())
    assert (code, out) == (0, b"")
    PLUGIN.add(request("ADD", conf(tmp_path)))
    stdin = json.dumps({**conf(tmp_path), "cni.dev/valid-attachments": []}).encode()
    code, out = skel.run(PLUGIN, environ={**env, "CNI_COMMAND": "GC"}, stdin=stdin)
    assert (code, out) == (0, b"")
    assert addresses(tmp_path / "net") == {}


def test_status_is_not_available_when_the_store_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CniError) as err:
        PLUGIN.status(request("STATUS", conf(blocker), cid="", ifname=""))
    assert err.value.code == Code.NOT_AVAILABLE


def test_del_and_check_of_nothing(tmp_path: Path) -> None:
    PLUGIN.delete(request("DEL", conf(tmp_path)))
    PLUGIN.delete(request("DEL", conf(tmp_path)))
    with pytest.raises(CniError, match="Failed to find address added by container ctr"):
        PLUGIN.check(request("CHECK", conf(tmp_path)))


@pytest.mark.parametrize(
    ("config_change", "args", "code"),
    [
        ({"subnet": "10.5.0.1/24"}, "", Code.INVALID_CONFIG),
        ({"subnet": "nope"}, "", Code.INVALID_CONFIG),
        ({"routes": [{"dst": "x"}]}, "", Code.INVALID_CONFIG),
        ({"ranges": "x"}, "", Code.INVALID_CONFIG),
        ({}, "K8S_POD_NAME=p", Code.INVALID_ENV),
        ({}, "IP=nope", Code.INVALID_ENV),
        ({"resolvConf": "/nonexistent"}, "", Code.IO),
    ],
)
def test_bad_input_has_the_spec_error_code(
    tmp_path: Path, config_change: dict[str, Any], args: str, code: int
) -> None:
    with pytest.raises(CniError) as err:
        PLUGIN.add(request("ADD", conf(tmp_path, **config_change), args=args))
    assert err.value.code == code


def test_store_failure_is_an_io_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CniError) as err:
        PLUGIN.add(request("ADD", conf(blocker)))
    assert err.value.code == Code.IO


def test_routes_keep_1_1_0_fields_only_in_1_1_0(tmp_path: Path) -> None:
    routes = [{"dst": "10.0.0.0/8", "gw": "10.5.0.1", "mtu": 1400, "table": 100}]
    result = PLUGIN.add(request("ADD", conf(tmp_path, routes=routes)))
    assert result.to_json("1.1.0")["routes"] == routes
    assert result.to_json("1.0.0")["routes"] == [{"dst": "10.0.0.0/8", "gw": "10.5.0.1"}]


def test_resolv_conf_becomes_dns(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "# comment\nnameserver 192.0.2.1\n; other\nnameserver 2001:db8::1\n"
        "domain a.org\nsearch b.org c.org\nsearch d.org\noptions ndots:5 rotate\nnameserver\n"
    )
    result = PLUGIN.add(request("ADD", conf(tmp_path, resolvConf=str(resolv))))
    assert result.dns.to_json() == {
        "nameservers": ["192.0.2.1", "2001:db8::1"],
        "domain": "a.org",
        "search": ["b.org", "c.org", "d.org"],
        "options": ["ndots:5", "rotate"],
    }


def test_lock_is_exclusive_across_open_files(tmp_path: Path) -> None:
    """flock on separate descriptors excludes even within one process (daemon threads)."""
    import fcntl

    store = Store(str(tmp_path), "net")
    with store.locked():
        fd = os.open(tmp_path / "net" / "lock", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(tmp_path / "net" / "lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)

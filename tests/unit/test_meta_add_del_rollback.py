"""The meta-plugin's ADD/DEL/CHECK/GC over fake delegates: order, rollback,
cache, status, DEL from the cache alone (SPECS.md NPWG runtime rules)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.invoke import PluginNotFoundError
from jaring.cni.plugin import Request
from jaring.metaplugin.meta import Environment, MetaPlugin, in_background

from .metafakes import FakeExecutor, FakeSource, bridge_conf

POD_ARGS = (
    ("IgnoreUnknown", "1"),
    ("K8S_POD_NAMESPACE", "default"),
    ("K8S_POD_NAME", "p1"),
    ("K8S_POD_UID", "uid-1"),
)


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.source = FakeSource()
        self.executor = FakeExecutor()
        self.cache_dir = tmp / "cache"
        self.routes: list[tuple[str, str, tuple[str, ...]]] = []
        harness = self

        class Routes:
            def set_default_routes(self, *, netns: str, ifname: str, gateways: Any) -> None:
                harness.routes.append((netns, ifname, tuple(gateways)))

        class Links:
            """Asks the fake executor whether the 'link' is still there."""

            def exists(self, *, netns: str, ifname: str) -> bool:
                return any(key[2] == ifname for key in harness.executor.links)

        self.plugin = MetaPlugin(
            Environment(
                make_source=lambda cfg: self.source,
                make_executor=lambda cfg: self.executor,
                routes=Routes(),
                links=Links(),
                sleep=lambda s: None,
            )
        )
        self.conf: dict[str, Any] = {
            "cniVersion": "1.0.0",
            "name": "jaring",
            "type": "jaring",
            "delegates": [bridge_conf("cluster")],
            "cniDir": str(self.cache_dir),
        }
        self.source.nad("default", "net-a", bridge_conf("net-a"))
        self.source.nad("default", "net-b", bridge_conf("net-b", capabilities={"ips": True}))

    def req(self, command: str, container: str = "c1", **conf: Any) -> Request:
        return Request.build(
            command,
            json.dumps({**self.conf, **conf}).encode(),
            container_id=container,
            netns="/var/run/netns/x",
            ifname="eth0",
            args=POD_ARGS,
            path=("/opt/cni/bin",),
        )

    def cache_files(self) -> list[str]:
        return (
            sorted(p.name for p in self.cache_dir.glob("*.json")) if self.cache_dir.exists() else []
        )


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_add_attaches_cluster_network_first_then_each_selected_network_in_order(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a, net-b@data")
    result = h.plugin.add(h.req("ADD"))
    assert [c for c in h.executor.calls] == [
        ("ADD", "cluster", "eth0"),
        ("ADD", "net-a", "net1"),
        ("ADD", "net-b", "data"),
    ]
    assert result.interfaces[0].name == "eth0"
    status = json.loads(h.source.statuses[("default", "p1")])
    assert [(s["name"], s["interface"], s.get("default", False)) for s in status] == [
        ("cluster", "eth0", True),
        ("default/net-a", "net1", False),
        ("default/net-b", "data", False),
    ]


def test_same_network_twice_is_two_attachments_with_two_statuses(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a,net-a")
    h.plugin.add(h.req("ADD"))
    status = json.loads(h.source.statuses[("default", "p1")])
    assert [s["interface"] for s in status] == ["eth0", "net1", "net2"]
    assert len(h.executor.links) == 3


@pytest.mark.parametrize("failing", ["cluster", "net-a", "net-b"])
def test_failing_delegate_at_any_position_rolls_back_every_attachment(
    h: Harness, failing: str
) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    h.executor.fail.add(("ADD", failing))
    with pytest.raises(CniError) as err:
        h.plugin.add(h.req("ADD"))
    assert failing in str(err.value)
    assert h.executor.links == {}
    assert h.cache_files() == []
    assert ("default", "p1") not in h.source.statuses
    added = [c for c in h.executor.calls if c[0] == "ADD"]
    assert added[-1][1] == failing  # nothing after the failure was attempted


def test_an_unexpected_failure_rolls_back_too_and_is_code_999(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    real = FakeExecutor.__call__

    def flaky(
        self: FakeExecutor, command: str, plugin_type: str, stdin: bytes, runtime: Any
    ) -> dict[str, Any] | None:
        if command == "ADD" and json.loads(stdin)["name"] == "net-b":
            raise RuntimeError("boom")
        return real(self, command, plugin_type, stdin, runtime)

    monkeypatch.setattr(FakeExecutor, "__call__", flaky)
    with pytest.raises(CniError) as err:
        h.plugin.add(h.req("ADD"))
    assert (err.value.code, err.value.msg) == (Code.OTHER, "ADD failed")
    assert "RuntimeError: boom" in err.value.details
    assert h.executor.links == {}
    assert h.cache_files() == []


def test_missing_nad_fails_before_any_delegate_runs(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a,nope")
    with pytest.raises(CniError, match="nope"):
        h.plugin.add(h.req("ADD"))
    assert h.executor.calls == []


def test_del_works_from_the_cache_alone_when_pod_and_nads_are_gone(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    h.plugin.add(h.req("ADD"))
    h.source.pods.clear()
    h.source.nads.clear()
    h.plugin.delete(h.req("DEL"))
    assert h.executor.links == {}
    assert [c[1] for c in h.executor.calls if c[0] == "DEL"] == ["net-b", "net-a", "cluster"]
    assert h.cache_files() == []


def test_del_twice_succeeds(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a")
    h.plugin.add(h.req("ADD"))
    h.plugin.delete(h.req("DEL"))
    h.plugin.delete(h.req("DEL"))
    assert h.executor.links == {}


def test_del_with_a_corrupt_cache_falls_back_to_what_it_can_find(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a")
    h.plugin.add(h.req("ADD"))
    (h.cache_dir / "c1.json").write_bytes(b"\x00garbage{")
    h.plugin.delete(h.req("DEL"))
    assert h.executor.links == {}


def test_del_tries_every_delegate_and_reports_the_failures_at_the_end(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    h.plugin.add(h.req("ADD"))
    h.executor.fail.add(("DEL", "net-b"))
    with pytest.raises(CniError, match="net-b"):
        h.plugin.delete(h.req("DEL"))
    assert set(h.executor.links) == {("c1", "net-b", "net2")}
    h.executor.fail.clear()
    h.plugin.delete(h.req("DEL"))  # the runtime retries: only net-b is left to do
    assert h.executor.links == {}
    assert h.cache_files() == []


def test_check_reaches_every_delegate_and_reports_drift(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a")
    h.plugin.add(h.req("ADD"))
    h.plugin.check(h.req("CHECK"))
    assert [c[1] for c in h.executor.calls if c[0] == "CHECK"] == ["cluster", "net-a"]
    del h.executor.links[("c1", "net-a", "net1")]
    with pytest.raises(CniError, match="net-a"):
        h.plugin.check(h.req("CHECK"))


def test_gc_deletes_attachments_the_runtime_no_longer_knows_and_prunes_the_cache(
    h: Harness,
) -> None:
    # GC exists from CNI 1.1.0: net-a speaks it, net-b (1.0.0) is skipped like libcni does.
    h.source.nad("default", "net-a", bridge_conf("net-a", "1.1.0"))
    h.source.pod("default", "p1", networks="net-a,net-b")
    h.plugin.add(h.req("ADD", container="keep"))
    h.plugin.add(h.req("ADD", container="gone"))
    h.plugin.gc(
        h.req("GC", **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]})
    )
    assert {k[0] for k in h.executor.links} == {"keep"}
    assert h.cache_files() == ["keep.json"]
    gc_confs = [c for c in h.executor.configs if "cni.dev/valid-attachments" in c]
    by_name = {c["name"]: c["cni.dev/valid-attachments"] for c in gc_confs}
    assert by_name["net-a"] == [{"containerID": "keep", "ifname": "net1"}]
    assert "net-b" not in by_name


def test_status_write_is_retried_then_rolled_back_by_default(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a")
    h.source.status_failures = 99
    with pytest.raises(CniError, match="network-status"):
        h.plugin.add(h.req("ADD"))
    assert h.executor.links == {}
    assert h.cache_files() == []


def test_status_write_failure_with_warn_keeps_networks_and_posts_a_warning_event(
    h: Harness,
) -> None:
    h.source.pod("default", "p1", networks="net-a")
    h.source.status_failures = 99
    h.plugin.add(h.req("ADD", statusFailure="warn"))
    assert len(h.executor.links) == 2
    assert any(w and r == "NetworkStatusNotWritten" for r, _, w in h.source.events)


def test_a_transient_status_failure_is_retried(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a")
    h.source.status_failures = 2
    h.plugin.add(h.req("ADD"))
    assert ("default", "p1") in h.source.statuses


def test_pod_uid_mismatch_fails_add(h: Harness) -> None:
    h.source.pod("default", "p1", uid="other-uid")
    with pytest.raises(CniError, match="UID"):
        h.plugin.add(h.req("ADD"))
    assert h.executor.calls == []


def test_default_route_moves_to_the_requested_network(h: Harness) -> None:
    h.source.pod(
        "default",
        "p1",
        networks=json.dumps([{"name": "net-a", "default-route": ["10.5.0.1"]}]),
    )
    result = h.plugin.add(h.req("ADD"))
    assert h.routes == [("/var/run/netns/x", "net1", ("10.5.0.1",))]
    assert all(r.dst != "0.0.0.0/0" for r in result.routes)
    status = json.loads(h.source.statuses[("default", "p1")])
    assert status[1]["default-route"] == ["10.5.0.1"]


def test_requested_capability_no_delegate_declares_fails_the_add(h: Harness) -> None:
    h.source.pod("default", "p1", networks=json.dumps([{"name": "net-a", "ips": ["10.1.1.5/24"]}]))
    with pytest.raises(CniError, match="ips"):
        h.plugin.add(h.req("ADD"))
    assert h.executor.calls == []


def test_static_ips_reach_a_delegate_that_declares_the_capability(h: Harness) -> None:
    h.source.pod("default", "p1", networks=json.dumps([{"name": "net-b", "ips": ["10.1.1.5/24"]}]))
    h.plugin.add(h.req("ADD"))
    sent = next(c for c in h.executor.configs if c["name"] == "net-b")
    assert sent["runtimeConfig"] == {"ips": ["10.1.1.5/24"]}


def test_cni_args_reach_the_delegate_as_args_cni(h: Harness) -> None:
    h.source.pod(
        "default", "p1", networks=json.dumps([{"name": "net-a", "cni-args": {"foo": "bar"}}])
    )
    h.plugin.add(h.req("ADD"))
    sent = next(c for c in h.executor.configs if c["name"] == "net-a")
    assert sent["args"]["cni"] == {"foo": "bar"}


def test_namespace_isolation_refuses_a_nad_of_another_namespace(h: Harness) -> None:
    h.source.nad("other", "net-x", bridge_conf("net-x"))
    h.source.pod("default", "p1", networks="other/net-x")
    with pytest.raises(CniError, match="other"):
        h.plugin.add(h.req("ADD", namespaceIsolation=True))
    assert h.executor.calls == []


def test_default_networks_attach_to_every_pod_outside_system_namespaces(h: Harness) -> None:
    h.source.nad("kube-system", "extra", bridge_conf("extra"))
    h.source.pod("default", "p1")
    h.plugin.add(h.req("ADD", defaultNetworks=["extra"]))
    assert [c[1] for c in h.executor.calls] == ["cluster", "extra"]


def test_invalid_annotation_fails_add_unless_configured_to_ignore(h: Harness) -> None:
    h.source.pod("default", "p1", networks="[{bad json")
    with pytest.raises(CniError) as err:
        h.plugin.add(h.req("ADD"))
    assert err.value.code == 7
    h.plugin.add(h.req("ADD", invalidSelection="ignore"))
    assert [c[1] for c in h.executor.calls] == ["cluster"]


def test_missing_cluster_network_is_an_error_never_a_silent_fallback(h: Harness) -> None:
    h.source.pod("default", "p1")
    conf = dict(h.conf)
    del conf["delegates"]
    h.conf = conf
    with pytest.raises(CniError, match="cluster network"):
        h.plugin.add(h.req("ADD"))


def test_status_asks_the_cluster_network_and_every_delegate_network_in_use(h: Harness) -> None:
    h.conf["delegates"] = [bridge_conf("cluster", "1.1.0")]
    h.source.nad("default", "net-a", bridge_conf("net-a", "1.1.0"))
    h.source.pod("default", "p1", networks="net-a")
    h.plugin.add(h.req("ADD"))
    h.plugin.status(h.req("STATUS"))
    assert [c[1] for c in h.executor.calls if c[0] == "STATUS"] == ["cluster", "net-a"]
    h.executor.fail.add(("STATUS", "net-a"))
    with pytest.raises(CniError, match="net-a is not ready"):
        h.plugin.status(h.req("STATUS"))


def test_a_failed_add_posts_a_warning_event_naming_the_network(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    h.executor.fail.add(("ADD", "net-b"))
    with pytest.raises(CniError):
        h.plugin.add(h.req("ADD"))
    warnings = [e for e in h.source.events if e[2]]
    assert [e[0] for e in warnings] == ["NetworkAttachFailed"]
    assert "net-b" in warnings[0][1]


def test_device_info_file_is_announced_reported_in_status_and_removed_on_del(
    h: Harness, tmp_path: Path
) -> None:
    h.conf["deviceInfoDir"] = str(tmp_path / "devinfo")
    (tmp_path / "devinfo" / "cni").mkdir(parents=True)
    h.source.nad(
        "default", "sriov-a", bridge_conf("sriov-a", capabilities={"CNIDeviceInfoFile": True})
    )
    h.source.pod("default", "p1", networks="sriov-a")
    path = tmp_path / "devinfo" / "cni" / "default-sriov-a-c1-net1-device.json"
    info = {"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:03:00.1"}}
    original = h.executor.__call__

    def writes_device_info(command: str, plugin_type: str, stdin: bytes, runtime: Any) -> Any:
        conf = json.loads(stdin)
        if command == "ADD" and "runtimeConfig" in conf:
            Path(conf["runtimeConfig"]["CNIDeviceInfoFile"]).write_text(json.dumps(info))
        return original(command, plugin_type, stdin, runtime)

    h.plugin.env.make_executor = lambda cfg: writes_device_info
    h.plugin.add(h.req("ADD"))
    status = json.loads(h.source.statuses[("default", "p1")])
    assert status[1]["device-info"] == info
    h.plugin.delete(h.req("DEL"))
    assert not path.exists()


def test_the_whole_plan_is_cached_before_the_first_delegate_runs(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    seen: list[list[str]] = []
    original = h.executor.__call__

    def peeking(command: str, plugin_type: str, stdin: bytes, runtime: Any) -> Any:
        if command == "ADD" and not seen:
            doc = json.loads((h.cache_dir / "c1.json").read_text())
            seen.append([a["ifname"] for a in doc["attachments"]])
        return original(command, plugin_type, stdin, runtime)

    h.plugin.env.make_executor = lambda cfg: peeking
    h.plugin.add(h.req("ADD"))
    assert seen == [["eth0", "net1", "net2"]]
    doc = json.loads((h.cache_dir / "c1.json").read_text())
    assert all(a["result"] for a in doc["attachments"])  # results written at the end


def _missing_plugin_for(h: Harness, network: str) -> None:
    original = h.executor.__call__

    def executor(command: str, plugin_type: str, stdin: bytes, runtime: Any) -> Any:
        if json.loads(stdin).get("name") == network and command in ("ADD", "DEL"):
            raise PluginNotFoundError(7, f"failed to find plugin {plugin_type!r} in path")
        return original(command, plugin_type, stdin, runtime)

    h.plugin.env.make_executor = lambda cfg: executor


def test_an_attachment_whose_plugin_is_missing_and_never_added_is_not_kept_forever(
    h: Harness,
) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    _missing_plugin_for(h, "net-b")
    with pytest.raises(CniError, match="failed to find plugin"):
        h.plugin.add(h.req("ADD"))
    assert h.executor.links == {}
    assert h.cache_files() == []  # rollback finished: nothing of net-b can exist


def test_a_completed_attachment_whose_plugin_vanished_keeps_failing_del(h: Harness) -> None:
    h.source.pod("default", "p1", networks="net-a,net-b")
    h.plugin.add(h.req("ADD"))
    _missing_plugin_for(h, "net-b")
    with pytest.raises(CniError, match="net-b"):
        h.plugin.delete(h.req("DEL"))
    assert h.cache_files() == ["c1.json"]  # its link may still exist: DEL must retry


def test_a_failed_del_whose_interface_is_gone_releases_ipam_itself_and_succeeds(
    h: Harness,
) -> None:
    h.source.nad(
        "default", "net-b", bridge_conf("net-b", ipam={"type": "host-local", "subnet": "x"})
    )
    h.source.pod("default", "p1", networks="net-a,net-b")
    h.plugin.add(h.req("ADD"))
    del h.executor.links[("c1", "net-b", "net2")]  # its master vanished, taking the link
    released: list[str] = []
    original = h.executor.__call__

    def bridge_del_fails(command: str, plugin_type: str, stdin: bytes, runtime: Any) -> Any:
        if command == "DEL" and json.loads(stdin)["name"] == "net-b":
            if plugin_type == "bridge":
                raise CniError(100, "Link not found")
            released.append(plugin_type)
        return original(command, plugin_type, stdin, runtime)

    h.plugin.env.make_executor = lambda cfg: bridge_del_fails
    h.plugin.delete(h.req("DEL"))
    assert released == ["host-local"]  # the lease, released by jaring itself
    assert h.cache_files() == []


def test_a_failed_del_whose_interface_is_still_there_keeps_failing(h: Harness) -> None:
    h.source.nad(
        "default", "net-b", bridge_conf("net-b", ipam={"type": "host-local", "subnet": "x"})
    )
    h.source.pod("default", "p1", networks="net-b")
    h.plugin.add(h.req("ADD"))
    h.executor.fail.add(("DEL", "net-b"))
    with pytest.raises(CniError, match="net-b"):
        h.plugin.delete(h.req("DEL"))
    assert h.cache_files() == ["c1.json"]


def test_background_job_is_waited_for_and_its_failure_handed_over() -> None:
    ran: list[str] = []
    assert in_background(lambda: ran.append("job"))() is None
    assert ran == ["job"]

    def failing() -> None:
        raise OSError(28, "No space left on device")

    failure = in_background(failing)()
    assert isinstance(failure, OSError) and failure.errno == 28


def test_results_cached_beside_the_status_write_land_before_a_rollback_removes_the_cache(
    h: Harness,
) -> None:
    # The results are saved while the status is written; a save that finishes
    # late must still finish before the rollback, or it would leave a cache
    # entry for networks that are gone.
    finished = threading.Event()

    def late(job: Callable[[], None]) -> Callable[[], BaseException | None]:
        def slow() -> None:
            time.sleep(0.05)  # the status write fails long before this is done
            job()
            finished.set()

        return in_background(slow)

    h.plugin.env.in_background = late
    h.source.pod("default", "p1", networks="net-a")
    h.source.status_failures = 99
    with pytest.raises(CniError, match="network-status"):
        h.plugin.add(h.req("ADD"))
    assert finished.is_set()
    assert h.executor.links == {}
    assert h.cache_files() == []


def test_a_results_save_that_fails_leaves_the_add_standing_and_del_cleans_up(
    h: Harness,
) -> None:
    def disk_full(job: Callable[[], None]) -> Callable[[], BaseException | None]:
        def fail() -> None:
            raise OSError(28, "No space left on device")

        return in_background(fail)

    h.plugin.env.in_background = disk_full
    h.source.pod("default", "p1", networks="net-a")
    h.plugin.add(h.req("ADD"))
    assert len(h.executor.links) == 2
    assert ("default", "p1") in h.source.statuses
    doc = json.loads((h.cache_dir / "c1.json").read_text())
    assert [a["ifname"] for a in doc["attachments"]] == ["eth0", "net1"]
    assert not any(a.get("result") for a in doc["attachments"])  # the plan, without results
    h.plugin.delete(h.req("DEL"))
    assert h.executor.links == {}
    assert h.cache_files() == []

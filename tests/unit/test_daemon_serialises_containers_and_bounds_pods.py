"""The node daemon in-process (issue 6): requests over its socket run the
meta-plugin; one container's operations never overlap, different pods run in
parallel up to the bound; metrics count requests, latency and delegate
failures; the HTTP endpoints answer; stop() finishes the request in flight
and removes the socket; a second daemon refuses a socket that is served.
Delegates are a fake executor: no root, no network."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.invoke import Runtime
from jaring.metaplugin import forward
from jaring.metaplugin.daemon import Daemon, DaemonExecutor, Settings, Views
from jaring.metaplugin.metrics import Metrics


class SlowDelegate:
    """Answers ADD after `delay`, recording how many calls overlap (per container, total)."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.total = 0
        self.max_total = 0
        self.max_per_container = 0
        self.fail_types: set[str] = set()

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None:
        with self.lock:
            self.active[runtime.container_id] = self.active.get(runtime.container_id, 0) + 1
            self.total += 1
            self.max_total = max(self.max_total, self.total)
            self.max_per_container = max(self.max_per_container, self.active[runtime.container_id])
        try:
            time.sleep(self.delay)
            if plugin_type in self.fail_types:
                raise CniError(Code.OTHER, "delegate broke")
            if command != "ADD":
                return None
            return {
                "cniVersion": "1.0.0",
                "interfaces": [{"name": runtime.ifname, "sandbox": runtime.netns}],
                "ips": [{"address": "10.0.0.2/24", "interface": 0}],
            }
        finally:
            with self.lock:
                self.active[runtime.container_id] -= 1
                self.total -= 1


class Harness:
    def __init__(self, tmp: Path, *, max_parallel: int = 16, delay: float = 0.1) -> None:
        self.delegate = SlowDelegate(delay)
        metrics = Metrics()
        self.settings = Settings(
            socket_path=str(tmp / "run" / "jaring.sock"),
            http_address="127.0.0.1:0",
            max_parallel=max_parallel,
            allowed_uids=frozenset({os.geteuid()}),
        )
        self.daemon = Daemon(
            self.settings,
            views=Views(node_name="n", watch=False),
            executor=DaemonExecutor(metrics=metrics, binary=self.delegate, loader=self._no_native),
            metrics=metrics,
        )
        self.daemon.listen()
        self.thread = threading.Thread(target=self.daemon.serve, daemon=True)
        self.thread.start()
        self.conf = {
            "cniVersion": "1.0.0",
            "name": "jaring",
            "type": "jaring",
            "cniDir": str(tmp / "cache"),
            "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "fake"}],
        }

    @staticmethod
    def _no_native(plugin_type: str) -> Any:
        raise CniError(Code.OTHER, "no native delegates in unit tests", plugin_type)

    def call(self, command: str, cid: str) -> tuple[int, Any]:
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": f"/var/run/netns/{cid}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": "/nonexistent",
        }
        answer = forward.forward(
            self.settings.socket_path, environ=env, stdin=json.dumps(self.conf).encode()
        )
        assert answer is not None, "the daemon did not answer"
        code, out = answer
        return code, json.loads(out) if out.strip() else None

    def http(self, path: str) -> tuple[int, str]:
        try:
            url = f"http://{self.daemon.http_address}{path}"
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> None:
        self.daemon.stop(timeout=10)
        self.thread.join(10)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    yield made
    made.stop()


def parallel(harness: Harness, calls: list[tuple[str, str]]) -> list[tuple[int, Any]]:
    results: list[tuple[int, Any]] = [(-1, None)] * len(calls)

    def one(index: int) -> None:
        results[index] = harness.call(*calls[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_add_and_del_over_the_socket(harness: Harness) -> None:
    code, doc = harness.call("ADD", "c1")
    assert code == 0, doc
    assert doc["ips"][0]["address"] == "10.0.0.2/24"
    assert harness.call("DEL", "c1") == (0, None)


def test_one_container_is_serialised(harness: Harness) -> None:
    results = parallel(harness, [("ADD", "same")] * 2 + [("DEL", "same")] * 2)
    assert all(code == 0 for code, _ in results), results
    assert harness.delegate.max_per_container == 1


def test_different_pods_run_in_parallel_up_to_the_bound(tmp_path: Path) -> None:
    harness = Harness(tmp_path, max_parallel=3, delay=0.2)
    try:
        results = parallel(harness, [("ADD", f"c{i}") for i in range(7)])
    finally:
        harness.stop()
    assert all(code == 0 for code, _ in results), results
    assert harness.delegate.max_total == 3


def test_metrics_count_requests_latency_and_delegate_failures(harness: Harness) -> None:
    assert harness.call("ADD", "c1")[0] == 0
    harness.delegate.fail_types.add("fake")
    code, doc = harness.call("ADD", "c2")
    assert code != 0 and "delegate broke" in doc["msg"], doc
    text = harness.daemon.metrics.render()
    assert 'jaring_requests_total{verb="ADD",result="ok"} 1' in text
    assert 'jaring_requests_total{verb="ADD",result="error"} 1' in text
    assert 'jaring_request_duration_seconds_count{verb="ADD"} 2' in text
    assert 'jaring_delegate_failures_total{type="fake",verb="ADD"} 1' in text
    assert 'jaring_cache_objects{kind="nad"} 0' in text


def test_http_endpoints(harness: Harness) -> None:
    assert harness.http("/healthz") == (200, "ok\n")
    assert harness.http("/readyz") == (200, "ok\n")
    code, text = harness.http("/metrics")
    assert code == 200 and "jaring_inflight_requests" in text
    assert harness.http("/nope")[0] == 404


def test_stop_finishes_the_request_in_flight_and_removes_the_socket(tmp_path: Path) -> None:
    harness = Harness(tmp_path, delay=0.5)
    result: list[tuple[int, Any]] = []
    worker = threading.Thread(target=lambda: result.append(harness.call("ADD", "c1")))
    worker.start()
    deadline = time.monotonic() + 10
    while harness.delegate.total == 0:
        assert time.monotonic() < deadline, "the ADD never reached its delegate"
        time.sleep(0.01)
    harness.stop()
    worker.join(10)
    assert result and result[0][0] == 0, result
    assert not os.path.exists(harness.settings.socket_path)
    env = {"CNI_COMMAND": "ADD"}
    assert forward.forward(harness.settings.socket_path, environ=env, stdin=b"{}") is None


def test_a_second_daemon_refuses_a_served_socket(harness: Harness) -> None:
    other = Daemon(harness.settings, views=Views(node_name="n", watch=False))
    with pytest.raises(SystemExit, match="another daemon"):
        other.listen()
    assert harness.call("ADD", "c1")[0] == 0  # the first one still serves


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "run" / "jaring.sock"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # what a daemon killed with -9 leaves behind
    stale.close()
    harness = Harness(tmp_path)
    try:
        assert harness.call("ADD", "c1")[0] == 0
    finally:
        harness.stop()

"""LESSONS #16: when network-status cannot be written after the networks are
up, ADD fails and leaves nothing (default), or succeeds with a Warning Event
(`statusFailure: warn`). The API here is scripted: every PATCH answers 503."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..api.cluster import kubeconfig_doc
from ..api.scripted import Answer, Script, serve
from .conftest import Host, Runtime, Sandbox, call

pytestmark = pytest.mark.root

NS, POD, UID = "team-a", "web", "0b8d6c1e-5c1f-4d3a-9a57-2f1f5f0e0a11"
POD_PATH = f"/api/v1/namespaces/{NS}/pods/{POD}"
NAD_PATH = f"/apis/k8s.cni.cncf.io/v1/namespaces/{NS}/network-attachment-definitions/data"


@pytest.fixture
def script(host: Host) -> Script:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": POD,
            "namespace": NS,
            "uid": UID,
            "annotations": {"k8s.v1.cni.cncf.io/networks": "data"},
        },
    }
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "data", "namespace": NS},
        "spec": {"config": json.dumps(host.macvlan("data"))},
    }
    unavailable = Answer.json(503, {"kind": "Status", "message": "etcd unavailable"})
    return (
        Script(default=Answer.json(201, {"kind": "Event"}))
        .route("GET", POD_PATH, Answer.json(200, pod))
        .route("GET", NAD_PATH, Answer.json(200, nad))
        .route("PATCH", POD_PATH, unavailable)
    )


@pytest.fixture
def scripted_runtime(host: Host, script: Script) -> Iterator[Runtime]:
    with serve(script) as url:
        kubeconfig = host.tmp / "scripted.kubeconfig"
        kubeconfig.write_text(json.dumps(kubeconfig_doc(url, token="t")))
        conf = {
            "cniVersion": "1.0.0",
            "name": f"jaring-{host.tag}",
            "type": "jaring",
            "kubeconfig": str(kubeconfig),
            "cniDir": str(host.cache_dir),
            "daemonSocket": "",
            "logFile": str(host.tmp / "jaring.log"),
            "delegates": [host.cluster_network()],
        }
        yield Runtime(host=host, conf=conf)


def events(script: Script, *, at_least: int = 1) -> list[dict[str, Any]]:
    """The Events posted; the binary posts them after answering, so wait a little."""
    deadline = time.monotonic() + 20
    while True:
        found = [json.loads(s.body) for s in script.seen if s.method == "POST"]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_status_failure_rolls_back_by_default(
    host: Host, scripted_runtime: Runtime, script: Script
) -> None:
    box = Sandbox(host.netns(), "5a1ad", NS, POD, UID)
    add = call(scripted_runtime, "ADD", box)
    assert add.code != 0
    assert add.doc["code"] == 101
    assert "network-status" in add.doc["msg"]
    assert "etcd unavailable" in add.doc.get("details", "")
    patches = [s for s in script.seen if s.method == "PATCH"]
    assert len(patches) > 1  # retried before giving up
    assert set(host.links(box.netns)) == {"lo"}
    assert host.leases() == []
    assert host.host_veths() == []
    assert list(host.cache_dir.glob("*.json")) == []
    assert [e["reason"] for e in events(script)] == ["NetworkAttachFailed"]


def test_status_failure_with_warn_keeps_the_networks(
    host: Host, scripted_runtime: Runtime, script: Script
) -> None:
    scripted_runtime.conf["statusFailure"] = "warn"
    box = Sandbox(host.netns(), "5a1ad", NS, POD, UID)
    add = call(scripted_runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    assert set(host.links(box.netns)) == {"lo", "eth0", "net1"}
    warnings = [e for e in events(script) if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["NetworkStatusNotWritten"]
    assert warnings[0]["involvedObject"]["uid"] == UID
    delete = call(scripted_runtime, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert host.leases() == []

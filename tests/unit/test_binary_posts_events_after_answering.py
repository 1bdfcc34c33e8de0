"""The `jaring` binary answers the runtime first and posts Events after.

Events are best effort (issue 2: "Kubernetes Events for added interfaces and
for failures"); the binary hands them to a child that holds none of the
runtime's pipes, so they cost the pod nothing (issue 2 "Measure").
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from .test_import_budget import _binary, _plugin


def _events(root: Path) -> list[dict[str, str]]:
    path = root / ".status" / "events.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _manifests(root: Path, networks: str) -> None:
    nad = {"cniVersion": "1.0.0", "type": "fakedata"}
    (root / "nad.json").write_text(
        json.dumps(
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": "data", "namespace": "default"},
                "spec": {"config": json.dumps(nad)},
            }
        )
    )
    (root / "pod.json").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "web",
                    "namespace": "default",
                    "uid": "uid-web",
                    "annotations": {"k8s.v1.cni.cncf.io/networks": networks},
                },
            }
        )
    )


def _add(tmp_path: Path, networks: str) -> tuple[subprocess.CompletedProcess[bytes], Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _plugin(bindir, "fakecluster", "10.1.0.5/24", 1)
    _plugin(bindir, "fakedata", "10.2.0.5/24", 2)
    root = tmp_path / "manifests"
    root.mkdir()
    _manifests(root, networks)
    config = {
        "cniVersion": "1.0.0",
        "name": "jaring",
        "type": "jaring",
        "manifestDir": str(root),
        "cniDir": str(tmp_path / "cache"),
        "daemonSocket": "",
        "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "fakecluster"}],
    }
    env = {
        "PATH": "/usr/bin:/bin",
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": str(tmp_path / "netns"),
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(bindir),
        "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=uid-web",
    }
    done = subprocess.run(
        [str(_binary())],
        input=json.dumps(config).encode(),
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done, root


def _wait_for(root: Path, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = _events(root)
        if len(events) >= count:
            return events
        time.sleep(0.02)
    return _events(root)


def test_added_interface_events_arrive_after_the_answer(tmp_path: Path) -> None:
    done, root = _add(tmp_path, "data")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ips"][0]["address"] == "10.1.0.5/24"
    events = _wait_for(root, 2)
    assert [(e["reason"], e["type"]) for e in events] == [
        ("AddedInterface", "Normal"),
        ("AddedInterface", "Normal"),
    ]
    assert "net1 [10.2.0.5/24] from default/data" in events[1]["message"]


def test_a_failed_add_posts_a_warning_event_after_the_error(tmp_path: Path) -> None:
    done, root = _add(tmp_path, "missing")
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == 7
    events = _wait_for(root, 1)
    assert [(e["reason"], e["type"]) for e in events] == [("NetworkAttachFailed", "Warning")]
    assert "missing" in events[0]["message"]

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

from .test_import_budget import _binary, fake_pod


def _events(root: Path) -> list[dict[str, str]]:
    path = root / ".status" / "events.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _add(tmp_path: Path, networks: str) -> tuple[subprocess.CompletedProcess[bytes], Path]:
    config, env = fake_pod(tmp_path, networks)
    done = subprocess.run(
        [str(_binary())],
        input=json.dumps(config).encode(),
        env={"PATH": "/usr/bin:/bin", "CNI_COMMAND": "ADD", **env},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done, Path(config["manifestDir"])


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

"""LocalSource writes network-status atomically beside the manifests and logs Events."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import Namespace, PodName, PodUID
from jaring.metaplugin.sources import LocalSource

NS = Namespace("ns1")
POD = PodName("p1")
STATUS = json.dumps([{"name": "ns1/cluster", "interface": "eth0", "default": True}])


def test_status_is_stored_as_the_annotation_text_and_read_back(tmp_path: Path) -> None:
    src = LocalSource(tmp_path)
    assert src.read_status(namespace=NS, name=POD) is None
    src.write_status(namespace=NS, name=POD, status=STATUS)
    assert (tmp_path / ".status" / "ns1_p1.json").read_text() == STATUS
    assert src.read_status(namespace=NS, name=POD) == STATUS
    src.write_status(namespace=NS, name=POD, status="[]")
    assert src.read_status(namespace=NS, name=POD) == "[]"
    assert os.listdir(tmp_path / ".status") == ["ns1_p1.json"]  # no temp files left


def test_status_is_not_part_of_the_pod_annotations(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(
        json.dumps({"kind": "Pod", "metadata": {"name": "p1", "namespace": "ns1"}})
    )
    src = LocalSource(tmp_path)
    src.write_status(namespace=NS, name=POD, status=STATUS)
    assert src.get_pod(namespace=NS, name=POD).annotations == {}


def test_readers_see_the_old_or_the_new_status_never_a_torn_one(tmp_path: Path) -> None:
    src = LocalSource(tmp_path)
    texts = [json.dumps([{"name": f"n{i}", "pad": "x" * 50_000}]) for i in range(2)]
    src.write_status(namespace=NS, name=POD, status=texts[0])
    stop = threading.Event()
    seen: list[str] = []

    def read() -> None:
        while not stop.is_set():
            seen.append(src.read_status(namespace=NS, name=POD) or "")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            src.write_status(namespace=NS, name=POD, status=texts[i % 2])
    finally:
        stop.set()
        reader.join()
    assert seen
    assert set(seen) <= set(texts)


def test_status_write_failure_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / ".status").write_text("a file where the directory should be")
    with pytest.raises(CniError) as info:
        LocalSource(tmp_path).write_status(namespace=NS, name=POD, status=STATUS)
    assert info.value.code == Code.IO
    assert "ns1_p1.json" in info.value.details


def test_events_are_json_lines_in_order(tmp_path: Path) -> None:
    src = LocalSource(tmp_path, clock=lambda: 0.0)
    src.post_event(namespace=NS, name=POD, uid=PodUID("u1"), reason="AddedInterface", message="a")
    src.post_event(
        namespace=NS, name=POD, uid=PodUID("u1"), reason="Failed", message="b", warning=True
    )
    lines = (tmp_path / ".status" / "events.log").read_text().splitlines()
    assert [json.loads(line) for line in lines] == src.events()
    assert src.events() == [
        {
            "time": "1970-01-01T00:00:00Z",
            "namespace": "ns1",
            "name": "p1",
            "uid": "u1",
            "type": "Normal",
            "reason": "AddedInterface",
            "message": "a",
        },
        {
            "time": "1970-01-01T00:00:00Z",
            "namespace": "ns1",
            "name": "p1",
            "uid": "u1",
            "type": "Warning",
            "reason": "Failed",
            "message": "b",
        },
    ]


def test_events_reader_skips_torn_lines(tmp_path: Path) -> None:
    src = LocalSource(tmp_path)
    src.post_event(namespace=NS, name=POD, uid=PodUID("u1"), reason="R", message="m")
    with open(tmp_path / ".status" / "events.log", "a") as fh:
        fh.write('{"half": \n[1]\n')
    assert [e["reason"] for e in src.events()] == ["R"]


def test_event_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".status").write_text("not a directory")
    LocalSource(tmp_path).post_event(
        namespace=NS, name=POD, uid=PodUID("u1"), reason="AddedInterface", message="m"
    )
    assert "cannot record event AddedInterface for ns1/p1" in caplog.text

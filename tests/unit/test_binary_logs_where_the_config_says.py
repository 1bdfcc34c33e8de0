"""The `jaring` binary logs where its config says (`logFile`, `logToStderr`,
`logLevel`; Multus's keys, issue 2), never to stdout, and loads `logging`
only when a record reaches the configured level: a good ADD at the default
level (`error`) pays nothing for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_import_budget import _binary, _loaded_modules, _run, fake_pod


def _add(tmp_path: Path, networks: str, **conf: Any) -> tuple[int, str, str, set[str]]:
    config, env = fake_pod(tmp_path, networks)
    code, out, err = _run(_binary(), "ADD", env, json.dumps({**config, **conf}).encode())
    records = "\n".join(line for line in err.splitlines() if not line.startswith("import time:"))
    return code, out, records, _loaded_modules(err)


def test_a_good_add_at_the_default_level_loads_no_logging(tmp_path: Path) -> None:
    code, out, records, modules = _add(tmp_path, "data")
    assert code == 0, out + records
    assert json.loads(out)["ips"][0]["address"] == "10.1.0.5/24"
    assert "jaring.metaplugin.meta" in modules  # the run was seen
    assert "logging" not in modules
    assert records == ""


@pytest.mark.parametrize("where", ["logFile", "logToStderr"])
def test_a_failed_add_is_logged_there_and_stdout_holds_only_the_error(
    tmp_path: Path, where: str
) -> None:
    log_file = tmp_path / "jaring.log"
    code, out, records, _ = _add(
        tmp_path, "nosuch", **{where: str(log_file) if where == "logFile" else True}
    )
    assert code != 0
    error = json.loads(out)  # exactly one JSON document, no log line in it
    assert "nosuch" in error["msg"] + error.get("details", "")
    text = log_file.read_text() if where == "logFile" else records
    assert " ERROR jaring.cni.skel: ADD failed: " in text, text
    assert "nosuch" in text
    if where == "logFile":
        assert records == ""  # the file, not stderr


def test_debug_level_lets_info_records_through(tmp_path: Path) -> None:
    # An absent daemon is noted at info level: `debug` logs it, the ADD succeeds.
    log_file = tmp_path / "jaring.log"
    missing = tmp_path / "no-daemon.sock"
    code, out, records, modules = _add(
        tmp_path, "data", logFile=str(log_file), logLevel="debug", daemonSocket=str(missing)
    )
    assert code == 0, out + records
    assert json.loads(out)["ips"][0]["address"] == "10.1.0.5/24"
    text = log_file.read_text()
    assert " INFO jaring.metaplugin.forward: daemon " in text, text
    assert f"{missing} unavailable" in text and "running standalone" in text
    assert "logging" in modules


def test_records_below_log_level_are_never_made(tmp_path: Path) -> None:
    # `panic` lets only critical records through: the failure is answered on
    # stdout, no log file is created and `logging` is never loaded.
    log_file = tmp_path / "jaring.log"
    code, out, records, modules = _add(tmp_path, "nosuch", logFile=str(log_file), logLevel="panic")
    assert code != 0
    assert json.loads(out)["code"]
    assert not log_file.exists()
    assert "logging" not in modules
    assert records == ""

"""`jaringctl demo examples/quickstart` (what `make demo` runs): pings across
every network, passes twice in a row, and leaves nothing behind, also when
interrupted with Ctrl-C (issue 3)."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jaring.metaplugin.ctl_demo import DEMO_LOCK

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not Path("/usr/lib/cni/macvlan").exists(), reason="reference plugins"),
]

JARINGCTL = str(Path(sys.executable).parent / "jaringctl")
QUICKSTART = str(Path(__file__).resolve().parents[2] / "examples" / "quickstart")
# The link names the quick-start manifests and the demo use.
DEMO_LINKS = ("jrdemo0", "jrdemo-data0", "jrdemo-br1")
HOST_LOCAL = Path("/var/lib/cni/networks")


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _demo_leftovers(store: Path, before: set[str]) -> list[str]:
    """What a finished demo left; checked holding the demo lock, as another
    session's demo (same link names) may be running meanwhile."""
    DEMO_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with DEMO_LOCK.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return _leftovers_now(store, before)


def _leftovers_now(store: Path, before: set[str]) -> list[str]:
    left = [f"link {n}" for n in DEMO_LINKS if Path("/sys/class/net", n).exists()]
    left += [f"netns {n}" for n in _netns() - before if "jaring-demo" in n]
    left += [f"ipam {p}" for p in ("data-plane", "backend") if (HOST_LOCAL / p).exists()]
    if store.exists():
        left.append(f"store {store}: {sorted(str(p) for p in store.rglob('*'))}")
    return left


def _force_clean(store: Path) -> None:
    """Only when a test failed: make sure the next run starts clean."""
    for path in sorted((store / ".jaring" / "pods").glob("*.json")):
        namespace, _, name = path.stem.partition("_")
        subprocess.run(
            [JARINGCTL, "--state-dir", str(store), "down", "--force", f"{namespace}/{name}"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    for name in DEMO_LINKS:
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def _run_demo(store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JARINGCTL, "--state-dir", str(store), "demo", QUICKSTART],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_demo_pings_across_every_network_twice_in_a_row(tmp_path: Path) -> None:
    store = tmp_path / "demo"
    before = _netns()
    try:
        for attempt in (1, 2):
            done = _run_demo(store)
            assert done.returncode == 0, (attempt, done.stdout[-3000:], done.stderr)
            assert "Traceback" not in done.stdout + done.stderr
            pings = re.findall(
                r"^\s+ok\s+jaring-demo/pod-\S+ (\S+) -> .* over (\S+):", done.stdout, re.M
            )
            networks = {network for _, network in pings}
            assert networks == {
                "jaring-local",
                "jaring-demo/data-plane",
                "jaring-demo/data-plane-static",
                "jaring-demo/backend",
            }, done.stdout
            assert len(pings) == 6  # both directions over eth0, the data plane and backend
            assert "FAIL" not in done.stdout
            assert "k8s.v1.cni.cncf.io/network-status:" in done.stdout
            assert "data0 asked for 02:6a:72:00:00:0b, has 02:6a:72:00:00:0b" in done.stdout
            assert "demo passed" in done.stdout
            assert _demo_leftovers(store, before) == []
    finally:
        _force_clean(store)


def test_an_interrupted_demo_cleans_up(tmp_path: Path) -> None:
    store = tmp_path / "demo"
    out_path = tmp_path / "out.txt"
    before = _netns()
    try:
        # A terminal's Ctrl-C: SIGINT to the whole process group. An ignored
        # SIGINT (pytest started in the background) would be inherited: a
        # handler is not, exec resets it to the default.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        with out_path.open("w") as out:
            try:
                proc = subprocess.Popen(
                    [JARINGCTL, "--state-dir", str(store), "demo", QUICKSTART],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                signal.signal(signal.SIGINT, previous)
            deadline = time.monotonic() + 60
            while "interfaces and network-status" not in out_path.read_text():
                assert proc.poll() is None, out_path.read_text()
                assert time.monotonic() < deadline, out_path.read_text()
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=120)
        text = out_path.read_text()
        assert code == 130, text
        assert "tear everything down" in text
        assert "interrupted" in text.splitlines()[-1]
        assert "Traceback" not in text
        assert _demo_leftovers(store, before) == []
    finally:
        _force_clean(store)


def test_a_demo_whose_output_is_cut_short_still_cleans_up(tmp_path: Path) -> None:
    """`make demo | head`: the closed pipe must not stop the teardown."""
    store = tmp_path / "demo"
    before = _netns()
    try:
        proc = subprocess.Popen(
            [JARINGCTL, "--state-dir", str(store), "demo", QUICKSTART],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        proc.stdout.close()
        proc.wait(timeout=120)
        assert any("==>" in line for line in lines)
        assert _demo_leftovers(store, before) == []
    finally:
        _force_clean(store)


def test_a_demo_killed_outright_is_cleaned_up_by_the_next_run(tmp_path: Path) -> None:
    store = tmp_path / "demo"
    out_path = tmp_path / "out.txt"
    before = _netns()
    try:
        with out_path.open("w") as out:
            proc = subprocess.Popen(
                [JARINGCTL, "--state-dir", str(store), "demo", QUICKSTART],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            deadline = time.monotonic() + 60
            while "interfaces and network-status" not in out_path.read_text():
                assert proc.poll() is None, out_path.read_text()
                assert time.monotonic() < deadline, out_path.read_text()
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        assert _demo_leftovers(store, before) != []  # kill -9 cleans nothing up
        done = _run_demo(store)
        assert done.returncode == 0, (done.stdout[-3000:], done.stderr)
        assert "clean up what an earlier, interrupted run left" in done.stdout
        assert _demo_leftovers(store, before) == []
    finally:
        _force_clean(store)

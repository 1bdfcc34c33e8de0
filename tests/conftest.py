"""Suite-wide: a SIGTERM (e.g. from `timeout` or CI cancelling the job) ends
the run like Ctrl-C, so fixtures still remove the namespaces, links and
files they made instead of leaving them on the machine."""

from __future__ import annotations

import signal
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure() -> None:
    signal.signal(signal.SIGTERM, _interrupt)

"""The node daemon's Prometheus metrics, in the text exposition format (0.0.4).

Counters and a latency histogram kept in memory under one lock, rendered by
`render` for `/metrics`; gauges are read from callbacks at scrape time (cache
sizes). Written by `daemon.py`; no client library (one less dependency).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping

# Seconds: CNI operations take milliseconds to seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """What `/metrics` shows: requests and latency by verb, delegate failures, gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._help: dict[str, str] = {}
        self._hist: dict[Labels, list[float]] = {}  # bucket counts, then sum, then count
        self._gauges: dict[str, tuple[str, str, Callable[[], Mapping[Labels, float]]]] = {}

    def inc(self, name: str, help_text: str, labels: Labels = (), value: float = 1.0) -> None:
        with self._lock:
            self._help[name] = help_text
            series = self._counters[name]
            series[labels] = series.get(labels, 0.0) + value

    def observe(self, verb: str, seconds: float) -> None:
        key = (("verb", verb),)
        with self._lock:
            row = self._hist.setdefault(key, [0.0] * (len(BUCKETS) + 2))
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    row[index] += 1
            row[-2] += seconds
            row[-1] += 1

    def gauge(
        self,
        name: str,
        help_text: str,
        read: Callable[[], Mapping[Labels, float]],
        *,
        kind: str = "gauge",
    ) -> None:
        """A series read at scrape time (`kind` "counter" for a total kept elsewhere)."""
        self._gauges[name] = (kind, help_text, read)

    def value(self, name: str, labels: Labels = ()) -> float:
        with self._lock:
            return self._counters.get(name, {}).get(labels, 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(self._counters):
                lines.append(f"# HELP {name} {self._help[name]}")
                lines.append(f"# TYPE {name} counter")
                for labels, value in sorted(self._counters[name].items()):
                    lines.append(f"{name}{_labels(labels)} {value:g}")
            hist = "jaring_request_duration_seconds"
            lines.append(f"# HELP {hist} CNI request latency in the daemon, by verb")
            lines.append(f"# TYPE {hist} histogram")
            for labels, row in sorted(self._hist.items()):
                for index, bound in enumerate(BUCKETS):
                    le = _labels(labels, 'le="' + f"{bound:g}" + '"')
                    lines.append(f"{hist}_bucket{le} {row[index]:g}")
                le = _labels(labels, 'le="+Inf"')
                lines.append(f"{hist}_bucket{le} {row[-1]:g}")
                lines.append(f"{hist}_sum{_labels(labels)} {row[-2]:.6f}")
                lines.append(f"{hist}_count{_labels(labels)} {row[-1]:g}")
        for name, (kind, help_text, read) in sorted(self._gauges.items()):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in sorted(read().items()):
                lines.append(f"{name}{_labels(labels)} {value:g}")
        return "\n".join(lines) + "\n"

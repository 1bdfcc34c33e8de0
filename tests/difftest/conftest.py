"""Fixtures of the differential tests: two sides (reference, jaring) of fresh host parts.

Root only: each side makes a netns and veth pairs with unique names and
removes them, its IPAM dir and its iptables chain afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Side


@pytest.fixture
def master_kind() -> str:
    """The macvlan/ipvlan master's kind; kernel-lab modules override it with dummy."""
    return "veth"


@pytest.fixture
def sides(tmp_path: Path, master_kind: str) -> Iterator[tuple[Side, Side]]:
    if os.geteuid() != 0:
        pytest.skip("differential tests need root and real network namespaces")
    ref = Side(tmp_path, master_kind=master_kind)
    ours = Side(tmp_path, master_kind=master_kind)
    try:
        ref.create()
        ours.create()
        yield ref, ours
    finally:
        ref.destroy()
        ours.destroy()

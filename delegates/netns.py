"""Netlink sockets in the host and in a pod's network namespace.

The one place native delegates get an `IPRoute`: the pod's is opened with
`flags=0` so a vanished netns is an error instead of a new empty namespace,
and our process never calls setns (pyroute2 makes the socket in a child).
Used by every link plugin (SPEC.md "CNI_NETNS"; DEL when the netns is gone).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jaring.cni.errors import CniError, Code

# pyroute2 ships no type information: IPRoute is Any to mypy, wrapped here.
from pyroute2 import IPRoute  # type: ignore[import-untyped]

Netlink = Any  # an open pyroute2 IPRoute


def exists(path: str) -> bool:
    """Whether `path` names a network namespace we could enter."""
    return bool(path) and os.path.exists(path)


@contextmanager
def host() -> Iterator[Netlink]:
    with IPRoute() as ipr:
        yield ipr


@contextmanager
def pod(path: str) -> Iterator[Netlink]:
    """The pod's netns; CniError(CONTAINER_UNKNOWN) when it does not exist."""
    if not exists(path):
        raise CniError(Code.CONTAINER_UNKNOWN, f"failed to open netns {path!r}", "no such file")
    try:
        ipr = IPRoute(netns=path, flags=0)
    except OSError as exc:
        raise CniError(Code.CONTAINER_UNKNOWN, f"failed to open netns {path!r}", str(exc)) from None
    with ipr:
        yield ipr


@contextmanager
def fd(path: str) -> Iterator[int]:
    """An fd on the netns, for moving links into it (IFLA_NET_NS_FD)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise CniError(Code.CONTAINER_UNKNOWN, f"failed to open netns {path!r}", str(exc)) from None
    try:
        yield handle
    finally:
        os.close(handle)

"""Netlink sockets in the host and in a pod's network namespace; pod sysctls.

The one place native delegates get an `IPRoute`. Our process never calls
setns: a forked helper (`NetnsAgent`) enters the pod's netns, makes the
netlink socket (or writes sysctls, which are per netns) and hands it back.
A vanished netns is an error, never a new empty namespace (pyroute2's
default). Used by every link plugin (SPEC.md "CNI_NETNS"; DEL when it is gone).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from types import MappingProxyType
from typing import Any

from jaring.cni.errors import CniError, Code

from .rtnl import Rtnl

Netlink = Any  # an open Rtnl (pyroute2's IPRoute call interface, the subset we use)


def exists(path: str) -> bool:
    """Whether `path` names a network namespace we could enter."""
    return bool(path) and os.path.exists(path)


@contextmanager
def host() -> Iterator[Netlink]:
    with Rtnl() as ipr:
        yield ipr


CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
MAX_MESSAGE = 65536


class NetnsAgent:
    """A forked helper process that enters namespaces for us.

    Started once, on first use; each request passes a netns fd (SCM_RIGHTS),
    sysctls to write there and whether to make a netlink socket, which comes
    back as an fd. ~0.2 ms a request, against ~6 ms for a fork per request and
    ~10 ms for pyroute2's own netns socket. Our process never changes netns.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channel: socket.socket | None = None
        self._pid = 0

    def _start(self) -> socket.socket:
        libc = ctypes.CDLL(None, use_errno=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the agent: serve until the parent's end closes, then exit
            code = 0
            try:
                ours.close()
                os.closerange(3, theirs.fileno())
                os.closerange(theirs.fileno() + 1, 65536)
                _serve(theirs, libc)
            except BaseException:  # never return into the parent's code
                code = 1
            os._exit(code)
        theirs.close()
        self._pid = pid
        # Close our end at exit: the agent then leaves, and no unclosed socket is
        # left for the interpreter to warn about.
        atexit.register(self._close)
        return ours

    def _close(self) -> None:
        # A daemon thread may still hold the lock at exit: never wait long for it.
        if self._lock.acquire(timeout=1):
            try:
                self._reap()
            finally:
                self._lock.release()

    def request(self, fd: int, *, sysctls: Mapping[str, str], want_socket: bool) -> int | None:
        payload = json.dumps({"sysctls": dict(sysctls), "socket": want_socket}).encode()
        with self._lock:
            for attempt in (1, 2):
                if self._channel is None:
                    self._channel = self._start()
                try:
                    socket.send_fds(self._channel, [payload], [fd])
                    message, fds, _, _ = socket.recv_fds(self._channel, MAX_MESSAGE, 1)
                except OSError:
                    message, fds = b"", []
                if message:
                    break
                self._reap()  # the agent died (killed, OOM): start a new one once
                if attempt == 2:
                    raise CniError(Code.OTHER, "netns agent is not answering")
        reply = json.loads(message)
        if reply.get("error"):
            for extra in fds:
                os.close(extra)
            raise CniError(Code.OTHER, "failed inside the pod's netns", str(reply["error"]))
        return fds[0] if fds else None

    def _reap(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._pid:
            with suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = 0


def _serve(channel: socket.socket, libc: Any) -> None:
    # Back home after every request: staying in a pod's netns would pin it (the
    # kernel frees a netns, and returns its physical devices, only when nothing
    # refers to it any more).
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, MAX_MESSAGE, 1)
        except OSError:
            return
        if not message:
            return  # the parent is gone
        reply: dict[str, Any] = {}
        out: list[int] = []
        try:
            request = json.loads(message)
            if not fds or libc.setns(fds[0], CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            for key, value in request["sysctls"].items():
                with open("/proc/sys/" + key.replace(".", "/"), "w") as handle:
                    handle.write(value)
            if request["socket"]:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
                out = [sock.detach()]
        except Exception as exc:  # reported to the parent, which raises a CniError
            reply["error"] = f"{type(exc).__name__}: {exc}"
        if libc.setns(home, CLONE_NEWNET) != 0:
            reply["error"] = reply.get("error") or "agent could not return to its own netns"
            socket.send_fds(channel, [json.dumps(reply).encode()], out)
            return  # a stuck agent must not pin the pod; the parent starts a new one
        socket.send_fds(channel, [json.dumps(reply).encode()], out)
        for fd in fds + out:
            os.close(fd)


AGENT = NetnsAgent()


def in_pod(
    path: str,
    *,
    sysctls: Mapping[str, str] = MappingProxyType({}),
    want_socket: bool = False,
    agent: NetnsAgent = AGENT,
) -> int | None:
    """In the pod's netns: write sysctls and/or make a netlink socket (its fd, ours to close)."""
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CniError(Code.CONTAINER_UNKNOWN, f"failed to open netns {path!r}", str(exc)) from None
    try:
        return agent.request(target, sysctls=sysctls, want_socket=want_socket)
    finally:
        os.close(target)


def pod_sysctl(path: str, settings: Mapping[str, str]) -> None:
    """Write sysctls as the pod sees them (per-netns /proc/sys/net)."""
    if settings:
        in_pod(path, sysctls=settings)


@contextmanager
def pod(path: str) -> Iterator[Netlink]:
    """The pod's netns; CniError(CONTAINER_UNKNOWN) when it does not exist."""
    if not exists(path):
        raise CniError(Code.CONTAINER_UNKNOWN, f"failed to open netns {path!r}", "no such file")
    fd = in_pod(path, want_socket=True)
    with Rtnl(fileno=fd) as ipr:
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

"""host-local's on-disk store, file-compatible with the reference plugin's.

`<dataDir>/<network>/<ip>` holds `<containerID>\\r\\n<ifname>` (older stores: the ID
alone), `last_reserved_ip.<rangeset index>` the last address handed out, and
`lock` is flock'ed around every change, so jaring and the reference binary can
share one store (containernetworking/plugins `backend/disk`). Used by `hostlocal`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .ipamconf import IPAddress, parse_ip

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LINE_BREAK = "\r\n"
LAST_IP_PREFIX = "last_reserved_ip."
LOCK_NAME = "lock"
# Our own temporary files: written in full, then hard-linked to the address
# name, so an address file is never seen without its owner.
TEMP_PREFIX = ".jaring-"


@dataclass(frozen=True)
class Owner:
    """Who holds an address: container ID and ifname ("" in pre-ifname stores)."""

    container_id: str
    ifname: str

    @classmethod
    def parse(cls, data: str) -> Owner:
        container_id, _, ifname = data.strip().partition(LINE_BREAK)
        return cls(container_id, ifname)


def _key(container_id: str, ifname: str) -> str:
    return container_id.strip() + LINE_BREAK + ifname


class Store:
    """One network's directory; every method but `locked` expects the lock held."""

    def __init__(self, data_dir: str, network: str) -> None:
        self.dir = os.path.join(data_dir or DEFAULT_DATA_DIR, network)

    @contextlib.contextmanager
    def locked(self) -> Iterator[Store]:
        """Create the directory and hold the reference's flock on `<dir>/lock`."""
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(self.dir, LOCK_NAME), os.O_RDONLY | os.O_CREAT, 0o750)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def reserve(self, ip: IPAddress, *, container_id: str, ifname: str, range_id: int) -> bool:
        """Claim `ip` for the owner; False when someone holds it already."""
        final = os.path.join(self.dir, str(ip))
        temp = os.path.join(self.dir, f"{TEMP_PREFIX}{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, _key(container_id, ifname).encode())
        finally:
            os.close(fd)
        try:
            os.link(temp, final)
        except FileExistsError:
            return False
        except OSError:  # no hard links on this filesystem: the reference's way
            if not _create_exclusive(final, _key(container_id, ifname)):
                return False
        finally:
            os.unlink(temp)
        self._write_last(range_id, str(ip))
        return True

    def _write_last(self, range_id: int, value: str) -> None:
        """Overwrite the hint in place, under the store's lock, as the reference
        does (it truncates first).

        Neither O_TRUNC nor a temp file renamed over it: ext4 starts writing out
        a file truncated to zero, or renamed over another, at close or rename
        (auto_da_alloc), ~0.2-0.5 ms a call. Overwriting the bytes and trimming
        the tail is not. A crash between the two leaves a longer address or
        garbage: only a hint where the search starts, which both plugins check
        against the range and ignore when unusable.
        """
        path = os.path.join(self.dir, f"{LAST_IP_PREFIX}{range_id}")
        data = value.encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    def last_reserved(self, range_id: int) -> IPAddress | None:
        """The last address reserved in a range set; None if unknown or unreadable."""
        try:
            with open(os.path.join(self.dir, f"{LAST_IP_PREFIX}{range_id}"), encoding="ascii") as f:
                return parse_ip(f.read())
        except (OSError, ValueError):
            return None

    def allocations(self) -> Iterator[tuple[IPAddress, Owner, str]]:
        """(address, owner, path) for every address file (files named by an IP)."""
        with os.scandir(self.dir) as entries:
            for entry in entries:
                ip = parse_ip(entry.name)
                if ip is None or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    with open(entry.path, encoding="utf-8", errors="replace", newline="") as f:
                        data = f.read()
                except OSError:
                    continue  # released under our feet: tolerate, like the reference
                yield ip, Owner.parse(data), entry.path

    def _matching(
        self, container_id: str, ifname: str
    ) -> tuple[list[tuple[IPAddress, str]], list[tuple[IPAddress, str]]]:
        """Files of this owner: (`id\\r\\nifname` ones, pre-ifname `id`-only ones).

        Compares bytes before parsing names: this runs on every ADD over every
        address of the network (the reference walks the directory the same way).
        """
        legacy_key = container_id.strip().encode()
        exact_key = legacy_key + LINE_BREAK.encode() + ifname.encode()
        exact: list[tuple[IPAddress, str]] = []
        legacy: list[tuple[IPAddress, str]] = []
        with os.scandir(self.dir) as entries:
            for entry in entries:
                name = entry.name
                if name == LOCK_NAME or name.startswith((LAST_IP_PREFIX, TEMP_PREFIX)):
                    continue
                data = _read_small(entry.path).strip()
                if data == exact_key:
                    found = exact
                elif data == legacy_key:
                    found = legacy
                else:
                    continue
                ip = parse_ip(name)
                if ip is not None and entry.is_file(follow_symlinks=False):
                    found.append((ip, entry.path))
        return exact, legacy

    def get_by_id(self, container_id: str, ifname: str) -> list[IPAddress]:
        """The owner's addresses, old-style files included (disk.Store GetByID)."""
        exact, legacy = self._matching(container_id, ifname)
        return [ip for ip, _ in exact + legacy]

    def find_by_id(self, container_id: str, ifname: str) -> bool:
        exact, legacy = self._matching(container_id, ifname)
        return bool(exact or legacy)

    def release_by_id(self, container_id: str, ifname: str) -> list[IPAddress]:
        """Remove the owner's files; [] when there are none (already released)."""
        exact, legacy = self._matching(container_id, ifname)
        released = []
        for ip, path in exact or legacy:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                released.append(ip)
        return released

    def release(self, ip: IPAddress) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dir, str(ip)))

    def remove_stale_temps(self) -> None:
        """Temp files only exist under the lock: any seen while holding it is from a crash."""
        with os.scandir(self.dir) as entries:
            for entry in entries:
                if entry.name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


def _read_small(path: str) -> bytes:
    """An address file's bytes; b"" when it vanished or is not a readable file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _create_exclusive(path: str, data: str) -> bool:
    try:
        fd = os.open(path, os.O_RDWR | os.O_EXCL | os.O_CREAT, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data.encode())
    except OSError:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return True

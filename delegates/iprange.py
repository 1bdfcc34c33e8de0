"""host-local's address ranges: parsing, validation and the allocation order.

Pure functions over frozen `Range`/`RangeSet`, called by `hostlocal`. The rules
and messages are the reference allocator's (containernetworking/plugins
`backend/allocator`: range.go, range_set.go, allocator.go `RangeIter`), so the
same config gives the same addresses in the same order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jaring.cni.errors import CniError, Code

from .ipamconf import IPAddress, field, obj, parse_cidr, parse_ip, seq, text

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RangeError(ValueError):
    """A range or range set the reference allocator would refuse (its message)."""


@dataclass(frozen=True)
class Range:
    """One subnet with its allocatable span [start, end] and gateway (all canonical)."""

    subnet: IPNetwork
    start: IPAddress
    end: IPAddress
    gateway: IPAddress

    @property
    def version(self) -> int:
        return self.start.version

    def contains(self, ip: IPAddress) -> bool:
        """In the subnet and within [start, end] (range.go Contains)."""
        return (
            ip.version == self.subnet.version
            and ip in self.subnet
            and int(self.start) <= int(ip) <= int(self.end)
        )

    def overlaps(self, other: Range) -> bool:
        if self.version != other.version:
            return False
        return (
            self.contains(other.start)
            or self.contains(other.end)
            or other.contains(self.start)
            or other.contains(self.end)
        )

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


@dataclass(frozen=True)
class RangeSet:
    """Ranges of one family that one allocation picks a single address from."""

    ranges: tuple[Range, ...]

    @property
    def version(self) -> int:
        return self.ranges[0].version

    def range_for(self, ip: IPAddress) -> Range | None:
        for r in self.ranges:
            if r.contains(ip):
                return r
        return None

    def contains(self, ip: IPAddress) -> bool:
        return self.range_for(ip) is not None

    def overlaps(self, other: RangeSet) -> bool:
        return any(a.overlaps(b) for a in self.ranges for b in other.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)


def _optional_ip(doc: Mapping[str, Any], key: str, where: str) -> IPAddress | None:
    raw = text(field(doc, key), f"{where}.{key}")
    if not raw:
        return None
    ip = parse_ip(raw)
    if ip is None:
        raise CniError(Code.INVALID_CONFIG, f"invalid IP address: {raw}", f"{where}.{key}")
    return ip


def _within(
    ip: IPAddress, subnet: IPNetwork, low: IPAddress | None, high: IPAddress | None
) -> bool:
    """range.go Contains while the range is being built (unset bounds are ignored)."""
    if ip.version != subnet.version or ip not in subnet:
        return False
    if low is not None and int(ip) < int(low):
        return False
    return not (high is not None and int(ip) > int(high))


def parse_range(doc: object, where: str) -> Range:
    """One range from its JSON; CniError(7) for bad JSON, RangeError for a bad range."""
    d = obj(doc, where)
    raw_subnet = text(field(d, "subnet"), f"{where}.subnet")
    start = _optional_ip(d, "rangeStart", where)
    end = _optional_ip(d, "rangeEnd", where)
    gateway = _optional_ip(d, "gateway", where)
    if not raw_subnet:
        raise RangeError("IP <nil> not v4 nor v6")
    cidr = parse_cidr(raw_subnet)
    if cidr is None:
        raise CniError(Code.INVALID_CONFIG, f"invalid CIDR address: {raw_subnet}", where)
    if cidr.prefix > cidr.mask_bits - 2:
        raise RangeError(f"Network {cidr} too small to allocate from")
    if cidr.mapped:
        raise RangeError("IPNet IP and Mask version mismatch")
    subnet = cidr.network()
    if subnet.network_address != cidr.ip:
        raise RangeError(
            "Network has host bits set. For a subnet mask of length "
            f"{cidr.prefix} the network address is {subnet.network_address}"
        )
    first = subnet.network_address + 1
    if gateway is None:
        gateway = first
    if start is not None:
        if not _within(start, subnet, start, end):
            raise RangeError(f"RangeStart {start} not in network {subnet}")
    else:
        start = first
    if end is not None:
        if not _within(end, subnet, start, end):
            raise RangeError(f"RangeEnd {end} not in network {subnet}")
    else:
        last = subnet.broadcast_address
        end = last - 1 if subnet.version == 4 else last
    return Range(subnet=subnet, start=start, end=end, gateway=gateway)


def parse_range_set(doc: object, where: str) -> RangeSet:
    """A list of ranges of one family that do not overlap (range_set.go Canonicalize)."""
    items = seq(doc, where)
    if not items:
        raise RangeError("empty range set")
    ranges = tuple(parse_range(item, f"{where}[{n}]") for n, item in enumerate(items))
    if any(r.version != ranges[0].version for r in ranges):
        raise RangeError("mixed address families")
    for i, a in enumerate(ranges):
        for b in ranges[i + 1 :]:
            if a.overlaps(b):
                raise RangeError(f"subnets {a} and {b} overlap")
    return RangeSet(ranges)


def candidates(
    rangeset: RangeSet, last_reserved: IPAddress | None
) -> Iterator[tuple[IPAddress, Range]]:
    """Every allocatable address once, round-robin after the last reserved one.

    The reference's RangeIter: start after `last_reserved` when the set holds
    it (else at the first range's start), walk each range to its end, wrap to
    the next range, skip gateways, stop on coming back to the first candidate.
    """
    ranges = rangeset.ranges
    index = 0
    cur: IPAddress | None = None
    first: IPAddress | None = None
    if last_reserved is not None and rangeset.contains(last_reserved):
        for i, r in enumerate(ranges):
            if r.contains(last_reserved):
                index, cur = i, last_reserved
                break
    while True:
        r = ranges[index]
        if cur is None:
            cur = first = r.start
            if cur != r.gateway:
                yield cur, r
            continue
        if cur == r.end:
            index = (index + 1) % len(ranges)
            r = ranges[index]
            cur = r.start
        else:
            cur = cur + 1
        if first is None:
            first = cur
        elif cur == first:
            return
        if cur != r.gateway:
            yield cur, r

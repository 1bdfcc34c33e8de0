"""IP address and prefix checks as `ipaddress` makes them, without importing it.

`ipaddress` loads `functools`, `collections` and `types` and builds some fifty
classes: ~2 ms of every CNI call, which only ever asks "is this an address,
an address with a prefix, a network, and which family". These functions
accept exactly the text `ipaddress.ip_address`, `ip_interface` and
`ip_network(strict=False)` accept (tested against them with generated text):
dotted quads without leading zeros; IPv6 in any form `inet_pton` reads, with
an optional `%scope`; a prefix length, or for IPv4 a netmask or hostmask.
"""

from __future__ import annotations

import _socket

_V4_BITS, _V6_BITS = 32, 128
_ALL_ONES = (1 << _V4_BITS) - 1


def _v4(text: str) -> int | None:
    """The address as an int, or None (ipaddress.IPv4Address's rules)."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not part or len(part) > 3 or not (part.isascii() and part.isdigit()):
            return None
        if part[0] == "0" and part != "0":  # leading zeros are ambiguous (octal)
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value


def _v6(text: str) -> bool:
    if "/" in text:
        return False
    address, sep, scope = text.partition("%")
    if sep and (not scope or "%" in scope):
        return False
    if not address.isascii():
        return False
    try:
        _socket.inet_pton(_socket.AF_INET6, address)
    except (OSError, ValueError):
        return False
    return True


def address_version(text: str) -> int:
    """4 or 6 when `ipaddress.ip_address(text)` takes it, else 0."""
    if _v4(text) is not None:
        return 4
    return 6 if _v6(text) else 0


def _prefix(text: str, bits: int) -> bool:
    """A prefix length ("24", "024"), as `_prefix_from_prefix_string` reads one."""
    return text.isascii() and text.isdigit() and int(text) <= bits


def _v4_mask(text: str) -> bool:
    """An IPv4 netmask (255.255.255.0) or hostmask (0.0.0.255)."""
    value = _v4(text)
    if value is None:
        return False
    for mask in (value, value ^ _ALL_ONES):
        inverted = mask ^ _ALL_ONES  # ones after the prefix
        if inverted & (inverted + 1) == 0:
            return True
    return False


def interface_version(text: str) -> int:
    """4 or 6 when `ipaddress.ip_interface(text)` (and so `ip_network(text,
    strict=False)`) takes it, else 0. Without a "/", that is an address."""
    address, *prefix = text.split("/")
    if len(prefix) > 1:
        return 0
    if _v4(address) is not None:
        if not prefix or _prefix(prefix[0], _V4_BITS) or _v4_mask(prefix[0]):
            return 4
        return 0
    if _v6(address) and (not prefix or _prefix(prefix[0], _V6_BITS)):
        return 6
    return 0

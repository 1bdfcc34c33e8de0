"""CNI spec versions jaring speaks, and the rules that depend on them.

Used by `skel` (which verbs a version allows), by result conversion and by
the meta-plugin when it chooses the version to talk to a delegate in.
"""

from __future__ import annotations

from .errors import CniError, Code

SUPPORTED: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"


def parse(version: str) -> tuple[int, int, int]:
    """'1.0.0' -> (1, 0, 0); raises CniError(DECODE) for anything else."""
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CniError(Code.DECODE, "invalid cniVersion", repr(version))
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def require_supported(version: object) -> str:
    """Return the version if jaring supports it, else CniError(1)."""
    if not isinstance(version, str) or not version:
        raise CniError(Code.INVALID_CONFIG, "missing cniVersion", "the network config has none")
    if version not in SUPPORTED:
        parse(version)  # a malformed string is a decode error, not a version error
        raise CniError(
            Code.INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f"config is {version!r}, jaring supports {', '.join(SUPPORTED)}",
        )
    return version


def at_least(version: str, minimum: str) -> bool:
    return parse(version) >= parse(minimum)

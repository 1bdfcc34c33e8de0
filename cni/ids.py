"""Identifiers that share `str` but must never be swapped (LESSONS #14).

Pass them by keyword; mypy keeps a pod name out of a namespace slot.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NewType
else:  # `typing` costs the binary ~4 ms a call; at runtime a NewType is its base type

    def NewType(_name: str, base: type) -> type:  # noqa: N802  # typing.NewType's name
        return base


Namespace = NewType("Namespace", str)
PodName = NewType("PodName", str)
PodUID = NewType("PodUID", str)
ContainerID = NewType("ContainerID", str)
IfName = NewType("IfName", str)
NadName = NewType("NadName", str)

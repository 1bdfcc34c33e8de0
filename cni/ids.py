"""Identifiers that share `str` but must never be swapped (LESSONS #14).

Pass them by keyword; mypy keeps a pod name out of a namespace slot.
"""

from __future__ import annotations

from typing import NewType

Namespace = NewType("Namespace", str)
PodName = NewType("PodName", str)
PodUID = NewType("PodUID", str)
ContainerID = NewType("ContainerID", str)
IfName = NewType("IfName", str)
NadName = NewType("NadName", str)

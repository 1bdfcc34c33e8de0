"""kmock with the two API-server duties Kopf relies on, for the operator's tests
and `bench/bench_operator.py` (one copy for both): `generateName` (Kopf's Events)
and `metadata.resourceVersion`/`generation` (Kopf's consistency checks), over
`LeanEmulator` (a record kept to in-flight requests: kmock routes by scanning it)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import kmock

from ..api.cluster import LeanEmulator


class Emulator(LeanEmulator):
    """kmock plus the two API server duties Kopf relies on: `generateName` (Events) and
    `metadata.resourceVersion` (Kopf's consistency checks after its own patches)."""

    _versions = itertools.count(1)

    async def _handle(self, request: Any) -> Any:
        if isinstance(request.data, dict) and request.resource is not None:
            meta = request.data.setdefault("metadata", {})
            if request.action == kmock.action.CREATE:
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("generation", 1)
            if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
                meta["resourceVersion"] = str(next(self._versions))
                if request.action == kmock.action.UPDATE and "spec" in request.data:
                    key = (request.resource, request.namespace, request.name)
                    if key in self.objects and not self.objects[key].deleted:
                        old = self.objects[key].get("metadata", {}).get("generation", 1)
                        meta["generation"] = old + 1
        return await super()._handle(request)

"""The installed `jaring-operator` console script, as the Deployment runs it: settings from
JARING_* variables, Kopf's liveness endpoint, NADs validated, a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.api
Eventually = Callable[..., Awaitable[Any]]


async def test_console_script_validates_nads_and_stops_on_sigterm(
    api: Any,
    operator_config: Any,
    tmp_path: Path,
    eventually: Eventually,
    free_tcp_port: Callable[[], int],
) -> None:
    script = Path(sys.executable).parent / "jaring-operator"
    port = operator_config.webhook_port
    health = f"http://127.0.0.1:{free_tcp_port()}/healthz"
    env = {
        **os.environ,
        "KUBECONFIG": str(api.kubeconfig),
        "JARING_CERT_DIR": str(tmp_path / "certs"),
        "JARING_WEBHOOK_PORT": str(port),
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(script), "--liveness", health], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:

            async def alive() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(log.read_text())
                try:
                    async with aiohttp.ClientSession() as session, session.get(health) as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(alive, timeout=30, what="the liveness endpoint")
            config = {"cniVersion": "1.0.0", "type": "bridge", "mtu": 70000}
            await api.create_nad("from-script", config)

            async def condition() -> dict[str, Any] | None:
                obj = await api.get(api.nad_path("from-script"))
                conds = ((obj or {}).get("status") or {}).get("conditions") or []
                return conds[0] if conds else None

            cond = await eventually(condition)
            assert cond["status"] == "False"
            assert cond["message"].startswith("spec.config.mtu: bridge: 70000 is greater")
            assert (tmp_path / "certs" / "tls.crt").exists()  # JARING_CERT_DIR honoured
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
